tls {
  defaults {
    ca_file   = "consul-agent-ca.pem"        # or ca_path = a directory of *.pem / *.crt
    cert_file = "dc1-server-consul-0.pem"
    key_file  = "dc1-server-consul-0-key.pem"
    verify_incoming = true
    verify_outgoing = true
    tls_min_version = "TLSv1_2"              # or TLSv1_3
  }
  internal_rpc { verify_server_hostname = true }
  https { verify_incoming = false }          # browsers and curl without a client certificate
}
ports { https = 8501 }

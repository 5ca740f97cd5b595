template {
  source      = "/etc/sekisho/deny.ctmpl"
  destination = "/etc/nginx/deny.conf"
  command     = "nginx -s reload"
  wait        = "1s:3s"            # or { min = "1s", max = "3s" }
}

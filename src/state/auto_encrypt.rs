//! The auto_encrypt CA (Consul signs client agents' certificates with its Connect CA; Sekisho
//! keeps a CA of its own for that): created once by a leader with `auto_encrypt.allow_tls`,
//! replicated so every server can sign and trusts what the others signed.

use serde::{Deserialize, Serialize};

use super::Store;

/// The CA's certificate and key, in PEM.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutoEncryptCa {
    /// The CA certificate.
    pub cert_pem: String,
    /// Its private key (never logged).
    pub key_pem: String,
}

impl std::fmt::Debug for AutoEncryptCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AutoEncryptCa").field("cert_pem", &self.cert_pem.len()).finish_non_exhaustive()
    }
}

/// Stores `ca` unless one is stored already (the first leader's wins). Returns whether it
/// was stored.
pub fn auto_encrypt_ca_set(st: &mut Store, ca: &AutoEncryptCa) -> bool {
    if st.auto_encrypt_ca.is_some() {
        return false;
    }
    st.auto_encrypt_ca = Some(ca.clone());
    true
}

/// The stored CA.
pub fn auto_encrypt_ca(st: &Store) -> Option<&AutoEncryptCa> {
    st.auto_encrypt_ca.as_ref()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_ca_stays_and_the_key_is_not_in_debug_output() {
        let mut st = Store::default();
        let a = AutoEncryptCa { cert_pem: "A".into(), key_pem: "secret-a".into() };
        let b = AutoEncryptCa { cert_pem: "B".into(), key_pem: "secret-b".into() };
        assert!(auto_encrypt_ca_set(&mut st, &a));
        assert!(!auto_encrypt_ca_set(&mut st, &b));
        assert_eq!(auto_encrypt_ca(&st), Some(&a));
        assert!(!format!("{a:?}").contains("secret"));
    }
}

//! `sekisho keygen`: a new gossip encryption key for `encrypt` and `sekisho keyring`.

use std::process::ExitCode;

use anyhow::Context as _;
use base64::Engine as _;
use ring::rand::{SecureRandom as _, SystemRandom};

use super::output::Output;

/// One-line help.
pub(crate) const ABOUT: &str = "Generates a new encryption key";
/// Long help.
pub(crate) const LONG_ABOUT: &str = "\
Print 32 random bytes from the operating system, base64-encoded: a key for the `encrypt`
configuration key (AES-256-GCM gossip encryption) or for `sekisho keyring -install`.

Example:
  $ sekisho keygen
  5K9OtfP7efFrNKe5WCQvXvnaXJ5cWP0SvXiwe0kkjM4=";

/// Key length (Consul's keygen makes AES-256 keys).
const KEY_LEN: usize = 32;

/// Prints a fresh key.
pub(crate) fn run(out: &mut Output) -> anyhow::Result<ExitCode> {
    out.line(generate()?)?;
    Ok(ExitCode::SUCCESS)
}

fn generate() -> anyhow::Result<String> {
    let mut key = [0u8; KEY_LEN];
    SystemRandom::new()
        .fill(&mut key)
        .map_err(|_| anyhow::anyhow!("the system random number generator failed"))
        .context("generating a key")?;
    Ok(base64::engine::general_purpose::STANDARD.encode(key))
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_are_fresh_and_valid_gossip_keys() {
        let (a, b) = (super::generate().unwrap(), super::generate().unwrap());
        assert_ne!(a, b);
        assert_eq!(a.len(), 44);
        assert_eq!(crate::gossip::decode_key(&a).unwrap().len(), 32);
    }
}

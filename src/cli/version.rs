//! `sekisho version`: our version and the Consul API version we speak.

use std::process::ExitCode;

use super::output::Output;

/// One-line help.
pub(crate) const ABOUT: &str = "Prints the Sekisho version";
/// Long help.
pub(crate) const LONG_ABOUT: &str = "\
Print Sekisho's version, the Consul API version it is compatible with (what it reports to
clients) and the gossip protocol version.

Example:
  $ sekisho version
  Sekisho v0.1.0
  Consul API compatibility: v1.22.0
  Protocol 2 spoken by default";

/// Prints the version block.
pub(crate) fn run(out: &mut Output) -> anyhow::Result<ExitCode> {
    out.line(render())?;
    Ok(ExitCode::SUCCESS)
}

fn render() -> String {
    format!(
        "Sekisho v{}\nConsul API compatibility: v{}\nProtocol 2 spoken by default",
        crate::VERSION,
        crate::CONSUL_COMPAT_VERSION
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_both_versions() {
        let text = super::render();
        assert!(text.starts_with(&format!("Sekisho v{}\n", crate::VERSION)));
        assert!(text.contains(crate::CONSUL_COMPAT_VERSION));
    }
}

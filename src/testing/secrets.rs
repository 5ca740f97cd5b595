//! Secret scanning for tests: capture everything the process logs (at `trace` for Sekisho)
//! and check that no SecretID shows up in it.

use std::io;
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

/// Everything this process logged since [`LogCapture::install`].
#[derive(Debug, Clone, Default)]
pub struct LogCapture {
    buf: Arc<Mutex<Vec<u8>>>,
}

struct Writer(Arc<Mutex<Vec<u8>>>);

impl io::Write for Writer {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.lock().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl LogCapture {
    /// Installs the process-wide log subscriber (once): every Sekisho event down to `trace`,
    /// other crates' from `debug`, with all their fields, into memory. Panics if another
    /// subscriber was installed first (the scan would then see nothing).
    pub fn install() -> LogCapture {
        static CAPTURE: OnceLock<LogCapture> = OnceLock::new();
        CAPTURE
            .get_or_init(|| {
                let cap = LogCapture::default();
                let buf = cap.buf.clone();
                let installed = tracing_subscriber::fmt()
                    .with_env_filter(tracing_subscriber::EnvFilter::new("debug,sekisho=trace"))
                    .with_ansi(false)
                    .with_writer(move || Writer(buf.clone()))
                    .try_init();
                assert!(installed.is_ok(), "a log subscriber was installed before the capture");
                cap
            })
            .clone()
    }

    /// The text logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf.lock()).into_owned()
    }

    /// Bytes logged so far.
    pub fn len(&self) -> usize {
        self.buf.lock().len()
    }

    /// Whether nothing was logged yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Panics naming the first secret found in the log, with the line it is on.
    pub fn assert_free_of(&self, secrets: &[&str]) {
        let text = self.text();
        for s in secrets.iter().filter(|s| !s.is_empty()) {
            if let Some(line) = text.lines().find(|l| l.contains(s)) {
                panic!("a secret ({}…) appears in the log: {line}", &s[..s.len().min(8)]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_in_a_log_field_is_found() {
        let cap = LogCapture::install();
        tracing::info!(token = "3f1e0c9a-secret", "resolving");
        cap.assert_free_of(&["not-logged"]);
        let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            cap.assert_free_of(&["3f1e0c9a-secret"])
        }));
        assert!(found.is_err(), "the scan missed a logged secret");
    }
}

//! The script probe (Consul's `CheckMonitor` with `args`): the program runs directly (no
//! shell) in its own process group with stdin at /dev/null; stdout and stderr share one pipe
//! whose last `max_output` bytes are kept. Exit 0 is passing, 1 warning, anything else
//! critical. At the timeout the whole group gets SIGKILL and the result is critical
//! `Timed out (<t>) running check`. As with Go's `cmd.Wait`, a run ends only when the pipe
//! closes too, so a background child that keeps it open runs into the timeout.

use std::io;
use std::os::fd::OwnedFd;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;
use tokio::process::Command;
use tokio::time::{Instant, timeout, timeout_at};

use super::net::{AbortOnDrop, os_err};
use super::{Outcome, Status};
use crate::http::decode::go_duration;

/// How long to wait, after killing a timed-out group, for output still in the pipe.
const DRAIN_AFTER_KILL: Duration = Duration::from_millis(200);

/// Runs one script check.
pub(crate) async fn run(args: &[String], limit: Duration, max_output: usize) -> Outcome {
    let Some((prog, rest)) = args.split_first() else {
        return Outcome::Direct(Status::Critical, "need an executable to run".into());
    };
    let (reader, writer) = match pipe_pair() {
        Ok(p) => p,
        Err(e) => return Outcome::Direct(Status::Critical, format!("pipe: {}", os_err(&e))),
    };
    let (err_writer, out_writer) = writer;
    let mut cmd = Command::new(prog);
    cmd.args(rest)
        .stdin(Stdio::null())
        .stdout(out_writer)
        .stderr(err_writer)
        .process_group(0)
        .kill_on_drop(true);
    let spawned = cmd.spawn();
    drop(cmd); // our copies of the pipe's write end
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => return Outcome::Direct(Status::Critical, spawn_err(prog, &e)),
    };
    let mut group = GroupKill(child.id().and_then(|p| libc::pid_t::try_from(p).ok()));
    let ring = Arc::new(Mutex::new(Ring::new(max_output)));
    let mut drain = AbortOnDrop(tokio::spawn(drain(reader, ring.clone())));

    let deadline = Instant::now() + limit;
    let finished = timeout_at(deadline, async {
        let status = child.wait().await;
        let _ = (&mut drain.0).await;
        status
    })
    .await;
    match finished {
        Ok(Ok(status)) => {
            group.disarm();
            let output = ring.lock().render();
            let status = match status.code() {
                Some(0) => Status::Passing,
                Some(1) => Status::Warning,
                _ => Status::Critical,
            };
            Outcome::Result(status, output)
        }
        Ok(Err(e)) => Outcome::Direct(Status::Critical, format!("wait: {}", os_err(&e))),
        Err(_) => {
            group.kill();
            let _ = child.wait().await;
            group.disarm();
            let _ = timeout(DRAIN_AFTER_KILL, &mut drain.0).await;
            let mut msg = format!("Timed out ({}) running check", go_duration(limit));
            let output = ring.lock().render();
            if !output.is_empty() {
                msg.push_str("\n\n");
                msg.push_str(&output);
            }
            Outcome::Direct(Status::Critical, msg)
        }
    }
}

/// One pipe: a non-blocking read end, and two write ends (stderr, stdout) for the child.
fn pipe_pair() -> io::Result<(pipe::Receiver, (io::PipeWriter, io::PipeWriter))> {
    let (reader, writer) = io::pipe()?;
    let reader = pipe::Receiver::from_owned_fd(OwnedFd::from(reader))?;
    let second = writer.try_clone()?;
    Ok((reader, (writer, second)))
}

async fn drain(mut reader: pipe::Receiver, ring: Arc<Mutex<Ring>>) {
    let mut buf = [0u8; 8192];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => ring.lock().push(&buf[..n]),
        }
    }
}

/// Go's `exec` error texts.
fn spawn_err(prog: &str, e: &io::Error) -> String {
    if !prog.contains('/') && e.kind() == io::ErrorKind::NotFound {
        format!("exec: {prog:?}: executable file not found in $PATH")
    } else {
        format!("fork/exec {prog}: {}", os_err(e))
    }
}

/// SIGKILLs the child's process group when dropped while armed (the runner was stopped
/// mid-run) or when told to. Disarmed once the child is reaped and the run is over.
struct GroupKill(Option<libc::pid_t>);

impl GroupKill {
    fn kill(&self) {
        if let Some(pgid) = self.0.filter(|p| *p > 0) {
            // SAFETY: kill(2) has no memory-safety preconditions; a negative pid names the
            // process group the child leads (process_group(0) made its pgid its pid).
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
        }
    }

    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for GroupKill {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Keeps the last `cap` bytes written (Consul's `circbuf`).
struct Ring {
    cap: usize,
    buf: std::collections::VecDeque<u8>,
    total: u64,
}

impl Ring {
    fn new(cap: usize) -> Ring {
        Ring { cap, buf: std::collections::VecDeque::new(), total: 0 }
    }

    fn push(&mut self, data: &[u8]) {
        self.total += data.len() as u64;
        let data = &data[data.len().saturating_sub(self.cap)..];
        let overflow = (self.buf.len() + data.len()).saturating_sub(self.cap);
        self.buf.drain(..overflow);
        self.buf.extend(data);
    }

    /// The kept bytes as text, prefixed with Consul's `Captured N of M bytes` when cut.
    fn render(&self) -> String {
        let (a, b) = self.buf.as_slices();
        let mut bytes = Vec::with_capacity(self.buf.len());
        bytes.extend_from_slice(a);
        bytes.extend_from_slice(b);
        let cut = self.total > self.buf.len() as u64;
        // A cut can split a character at the front: skip its continuation bytes.
        let start = if cut { bytes.iter().take(3).take_while(|b| **b & 0xC0 == 0x80).count() } else { 0 };
        let text = String::from_utf8_lossy(&bytes[start..]).into_owned();
        if cut { format!("Captured {} of {} bytes\n...\n{text}", self.cap, self.total) } else { text }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_keeps_the_tail_and_says_so() {
        let mut r = Ring::new(4);
        r.push(b"ab");
        assert_eq!(r.render(), "ab");
        r.push(b"cdef");
        assert_eq!(r.render(), "Captured 4 of 6 bytes\n...\ncdef");
        r.push(b"0123456789");
        assert_eq!(r.render(), "Captured 4 of 16 bytes\n...\n6789");
    }

    #[test]
    fn ring_does_not_start_with_half_a_character() {
        let mut r = Ring::new(3);
        r.push("xé!".as_bytes()); // 78 c3 a9 21
        assert_eq!(r.render(), "Captured 3 of 4 bytes\n...\né!");
        let mut r = Ring::new(2);
        r.push("xé!".as_bytes());
        assert_eq!(r.render(), "Captured 2 of 4 bytes\n...\n!");
    }

    #[test]
    fn spawn_errors_read_like_go() {
        let nf = io::Error::from(io::ErrorKind::NotFound);
        assert_eq!(spawn_err("nosuch", &nf), "exec: \"nosuch\": executable file not found in $PATH");
        let e = io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(spawn_err("/no/such", &e), "fork/exec /no/such: no such file or directory");
    }
}

//! Where commands print, and the two text layouts Consul's CLI uses.
//!
//! [`columnize`] mirrors Go's `ryanuber/columnize` (columns joined by two spaces, the last
//! one unpadded), used by `members` and `catalog nodes`. [`tab_align`] mirrors Go's
//! `tabwriter` with padding 6, used by `kv get -detailed` and `catalog services -tags`.

use std::io::{self, Write};

/// A command's stdout and stderr.
pub(crate) struct Output {
    out: Box<dyn Write>,
    err: Box<dyn Write>,
}

impl Output {
    /// The process's stdout and stderr.
    pub(crate) fn stdio() -> Self {
        Self::new(Box::new(io::stdout()), Box::new(io::stderr()))
    }

    /// Any pair of writers (tests capture into buffers).
    pub(crate) fn new(out: Box<dyn Write>, err: Box<dyn Write>) -> Self {
        Self { out, err }
    }

    /// Writes `text` and a newline to stdout.
    pub(crate) fn line(&mut self, text: impl AsRef<[u8]>) -> io::Result<()> {
        self.out.write_all(text.as_ref())?;
        self.out.write_all(b"\n")
    }

    /// Writes `text` and a newline to stderr.
    pub(crate) fn error(&mut self, text: impl AsRef<[u8]>) -> io::Result<()> {
        self.err.write_all(text.as_ref())?;
        self.err.write_all(b"\n")
    }

    /// Flushes both streams.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        self.out.flush()?;
        self.err.flush()
    }
}

/// Aligns rows into columns separated by two spaces; the last cell of a row is not padded.
/// No trailing newline.
pub(crate) fn columnize(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            let cells = rows.iter().filter_map(|r| r.get(c));
            cells.map(|s| s.chars().count()).max().unwrap_or(0)
        })
        .collect();
    let lines: Vec<String> = rows
        .iter()
        .map(|row| {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    let pad = widths[i] - cell.chars().count();
                    line.push_str(cell);
                    line.push_str(&" ".repeat(pad + 2));
                }
            }
            line
        })
        .collect();
    lines.join("\n")
}

/// Two-column layout like Go's `tabwriter.NewWriter(w, 0, 2, 6, ' ', 0)`: the first column
/// padded to its widest cell plus six spaces (no padding before an empty value). No
/// trailing newline.
pub(crate) fn tab_align<S: AsRef<str>>(rows: &[(S, String)]) -> String {
    let width = rows.iter().map(|(l, _)| l.as_ref().chars().count()).max().unwrap_or(0);
    let lines: Vec<String> = rows
        .iter()
        .map(|(label, value)| {
            let label = label.as_ref();
            if value.is_empty() {
                return label.to_owned();
            }
            let pad = width - label.chars().count() + 6;
            format!("{label}{}{value}", " ".repeat(pad))
        })
        .collect();
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[&str]) -> Vec<String> {
        cells.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn columnize_pads_all_but_the_last_column() {
        let out = columnize(&[row(&["Node", "Address", "Status"]), row(&["n1", "10.0.0.1:8301", "alive"])]);
        assert_eq!(out, "Node  Address        Status\nn1    10.0.0.1:8301  alive");
    }

    #[test]
    fn tab_align_pads_labels_by_six() {
        let out = tab_align(&[("Key", "a".to_owned()), ("CreateIndex", "1".to_owned())]);
        assert_eq!(out, "Key              a\nCreateIndex      1");
    }
}

//! A function process's output, kept per process so that an invocation's log tail can
//! show the lines written while it ran (Lambda's `X-Amz-Log-Result`).

use std::collections::VecDeque;

/// Lines kept per process, and bytes kept per line: enough for a 4 KB tail.
const MAX_LINES: usize = 256;
const MAX_LINE_BYTES: usize = 4096;
/// Lambda returns the last 4 KB of an invocation's log.
pub const TAIL_BYTES: usize = 4096;

/// The last lines a process wrote, numbered so a reader can ask for those after a mark.
#[derive(Debug, Default)]
pub struct LogBuffer {
    lines: VecDeque<(u64, String)>,
    next: u64,
}

impl LogBuffer {
    /// Keeps a line, dropping the oldest past the bound.
    pub fn push(&mut self, mut line: String) {
        if line.len() > MAX_LINE_BYTES {
            let mut cut = MAX_LINE_BYTES;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            line.truncate(cut);
        }
        if self.lines.len() == MAX_LINES {
            self.lines.pop_front();
        }
        self.lines.push_back((self.next, line));
        self.next += 1;
    }

    /// The number the next line will get.
    pub fn mark(&self) -> u64 {
        self.next
    }

    /// Lines written since `mark`.
    pub fn since(&self, mark: u64) -> Vec<String> {
        self.lines
            .iter()
            .filter(|(n, _)| *n >= mark)
            .map(|(_, l)| l.clone())
            .collect()
    }
}

/// Lambda's tail: `START`, the function's lines, `END`, `REPORT`, cut to the last 4 KB
/// (at a line start where possible, so the REPORT line always survives whole).
pub fn tail(request_id: &str, lines: &[String], report: &str) -> String {
    let mut log = format!("START RequestId: {request_id} Version: $LATEST\n");
    for line in lines {
        log.push_str(line);
        log.push('\n');
    }
    log.push_str(&format!("END RequestId: {request_id}\n{report}\n"));
    if log.len() <= TAIL_BYTES {
        return log;
    }
    let mut start = log.len() - TAIL_BYTES;
    while !log.is_char_boundary(start) {
        start += 1;
    }
    match log[start..].find('\n') {
        Some(nl) if start + nl + 1 < log.len() - report.len() => log[start + nl + 1..].to_owned(),
        _ => log[start..].to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_after_a_mark_and_a_bounded_tail_ending_in_the_report() {
        let mut buf = LogBuffer::default();
        buf.push("before".into());
        let mark = buf.mark();
        buf.push("during".into());
        assert_eq!(buf.since(mark), vec!["during".to_owned()]);
        let long: Vec<String> = (0..500).map(|i| format!("line {i} ééé")).collect();
        let report = "REPORT RequestId: r\tDuration: 1.00 ms\t";
        let t = tail("r", &long, report);
        assert!(t.len() <= TAIL_BYTES);
        assert!(t.trim_end().ends_with(report.trim_end()));
        assert!(t.starts_with("line "));
        let short = tail("r", &["x".into()], report);
        assert!(short.starts_with("START RequestId: r Version: $LATEST\nx\nEND RequestId: r\n"));
    }
}

//! Cuts long documents into line-aligned windows for training.
//!
//! A model that reads whole documents at test time can still be trained on pieces of
//! them: the cost of a training step grows with the padded length of its batch, and a
//! few kilobytes of a source file already show its language. Cutting at line breaks
//! keeps every window valid UTF-8 and made of whole lines, as a reader would quote it.

/// Consecutive, non-overlapping pieces of `text`, each made of whole lines and at most
/// `window` bytes long. A line longer than `window` is a piece of its own, cut at the
/// last character boundary that fits; no byte of `text` is lost or repeated.
pub fn line_windows(text: &str, window: usize) -> Vec<&str> {
    assert!(window > 0, "a window holds at least one byte");
    let mut out = Vec::new();
    let mut start = 0;
    while start < text.len() {
        let rest = &text[start..];
        let end = if rest.len() <= window {
            rest.len()
        } else {
            match rest.as_bytes()[..window].iter().rposition(|&b| b == b'\n') {
                Some(i) => i + 1,
                None => floor_char_boundary(rest, window),
            }
        };
        out.push(&rest[..end]);
        start += end;
    }
    out
}

/// The largest index `<= at` that starts a character of `s` (and is at least 1, so a
/// piece is never empty when the first character is wider than the window).
fn floor_char_boundary(s: &str, at: usize) -> usize {
    let mut i = at.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    if i == 0 {
        s.char_indices().nth(1).map_or(s.len(), |(j, _)| j)
    } else {
        i
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_lines_within_the_window_and_nothing_lost() {
        let text = "fn a() {}\nfn b() {}\n\nlet x = 1;\nlet long_name = 2;\n";
        for window in [10, 12, 25, 1000] {
            let pieces = line_windows(text, window);
            assert_eq!(pieces.concat(), text, "window {window}");
            for p in &pieces {
                assert!(p.len() <= window, "{p:?} over {window}");
            }
        }
        // Every line fits in 25 bytes, so every piece is whole lines.
        for p in line_windows(text, 25) {
            assert!(p.ends_with('\n'), "{p:?} is not whole lines");
        }
        assert_eq!(line_windows(text, 12)[0], "fn a() {}\n");
    }

    #[test]
    fn a_line_longer_than_the_window_is_cut_on_a_character_boundary() {
        let text = "ééééé\nab\n";
        let pieces = line_windows(text, 3);
        assert_eq!(pieces.concat(), text);
        assert!(pieces.iter().all(|p| p.len() <= 3 && !p.is_empty()));
        assert_eq!(line_windows("€", 1), vec!["€"]);
    }
}

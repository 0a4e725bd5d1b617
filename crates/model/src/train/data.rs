//! Labelled text files for training and evaluation: JSONL, CSV or TSV with a header.

use std::path::Path;

use serde::Deserialize;

use crate::error::{ModelError, Result};

/// One labelled document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    /// The document's bytes (the model reads bytes).
    pub text: Vec<u8>,
    /// Its class name.
    pub label: String,
}

#[derive(Deserialize)]
struct JsonRecord {
    text: Option<String>,
    label: Option<serde_json::Value>,
}

/// Reads a data file; the format follows the extension (`.jsonl`/`.json` → JSON lines,
/// `.csv`, `.tsv`), with JSON lines as the default.
///
/// Every refusal names the file and 1-based line: unparsable lines, a missing `text` or
/// `label`, an empty text. A file with fewer than two labels is refused when
/// `require_two_labels` (training), since there is nothing to learn.
pub fn load_examples(path: &Path, require_two_labels: bool) -> Result<Vec<Example>> {
    let content = std::fs::read(path).map_err(|e| ModelError::io(path, e))?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let examples = match ext.as_str() {
        "csv" => load_delimited(path, &content, b',')?,
        "tsv" => load_delimited(path, &content, b'\t')?,
        _ => load_jsonl(path, &content)?,
    };
    let data_error = |line, reason: String| ModelError::Data {
        path: path.to_path_buf(),
        line,
        reason,
    };
    if examples.is_empty() {
        return Err(data_error(0, "no examples".into()));
    }
    if require_two_labels {
        let first = &examples[0].label;
        if examples.iter().all(|e| &e.label == first) {
            return Err(data_error(
                0,
                format!(
                    "every example has the label {first:?}; training needs at least two labels"
                ),
            ));
        }
    }
    Ok(examples)
}

fn load_jsonl(path: &Path, content: &[u8]) -> Result<Vec<Example>> {
    let mut out = Vec::new();
    for (i, line) in content.split(|&b| b == b'\n').enumerate() {
        let line_no = i + 1;
        let err = |reason: String| ModelError::Data {
            path: path.to_path_buf(),
            line: line_no,
            reason,
        };
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let record: JsonRecord =
            serde_json::from_slice(line).map_err(|e| err(format!("not a JSON object: {e}")))?;
        let text = record
            .text
            .ok_or_else(|| err("missing field \"text\"".into()))?;
        let label = match record.label {
            Some(serde_json::Value::String(s)) => s,
            Some(v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => v.to_string(),
            Some(_) => return Err(err("field \"label\" must be a string or number".into())),
            None => return Err(err("missing field \"label\"".into())),
        };
        out.push(checked(text.into_bytes(), label).map_err(err)?);
    }
    Ok(out)
}

fn load_delimited(path: &Path, content: &[u8], delimiter: u8) -> Result<Vec<Example>> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(false)
        .from_reader(content);
    let err = |line: usize, reason: String| ModelError::Data {
        path: path.to_path_buf(),
        line,
        reason,
    };
    let headers = reader
        .byte_headers()
        .map_err(|e| err(1, format!("unreadable header: {e}")))?
        .clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h == name.as_bytes())
            .ok_or_else(|| err(1, format!("the header has no {name:?} column")))
    };
    let (text_col, label_col) = (column("text")?, column("label")?);
    let mut out = Vec::new();
    for record in reader.byte_records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line() as usize);
            err(line, format!("malformed row: {e}"))
        })?;
        let line = record.position().map_or(0, |p| p.line() as usize);
        let text = record.get(text_col).unwrap_or_default().to_vec();
        let label = String::from_utf8_lossy(record.get(label_col).unwrap_or_default()).into_owned();
        out.push(checked(text, label).map_err(|reason| err(line, reason))?);
    }
    Ok(out)
}

fn checked(text: Vec<u8>, label: String) -> std::result::Result<Example, String> {
    if text.is_empty() {
        return Err("empty \"text\"".into());
    }
    if label.trim().is_empty() {
        return Err("empty \"label\"".into());
    }
    Ok(Example { text, label })
}

/// Writes examples as JSON lines (the format `load_examples` reads by default).
pub fn write_jsonl(path: &Path, examples: &[Example]) -> Result<()> {
    let mut out = String::new();
    for e in examples {
        let record = serde_json::json!({
            "text": String::from_utf8_lossy(&e.text),
            "label": e.label,
        });
        out.push_str(&record.to_string());
        out.push('\n');
    }
    std::fs::write(path, out).map_err(|e| ModelError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, content: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        (dir, path)
    }

    #[test]
    fn reads_jsonl_csv_and_tsv() {
        let (_d, p) = write(
            "a.jsonl",
            "{\"text\":\"hi\",\"label\":\"en\"}\n\n{\"text\":\"hallo\",\"label\":\"de\"}\n",
        );
        assert_eq!(load_examples(&p, true).unwrap().len(), 2);
        let (_d, p) = write("a.csv", "label,text\nen,\"hi, there\"\nde,hallo\n");
        let ex = load_examples(&p, true).unwrap();
        assert_eq!(ex[0].text, b"hi, there");
        let (_d, p) = write("a.tsv", "text\tlabel\nhi\ten\nhallo\tde\n");
        assert_eq!(load_examples(&p, true).unwrap()[1].label, "de");
    }

    #[test]
    fn errors_name_file_and_line() {
        for (name, content, needles) in [
            (
                "a.jsonl",
                "{\"text\":\"hi\",\"label\":\"en\"}\n{\"label\":\"de\"}\n",
                &["a.jsonl:2", "\"text\""][..],
            ),
            (
                "a.jsonl",
                "{\"text\":\"\",\"label\":\"en\"}\n",
                &[":1: empty"],
            ),
            ("a.csv", "text,lbl\nhi,en\n", &["\"label\" column"]),
            ("a.jsonl", "not json\n", &[":1: not a JSON"]),
        ] {
            let (_d, p) = write(name, content);
            let e = load_examples(&p, true).unwrap_err().to_string();
            for needle in needles {
                assert!(e.contains(needle), "{content:?}: {needle:?} not in {e}");
            }
        }
        // One label is refused only where two are required.
        let (_d, p) = write(
            "a.jsonl",
            "{\"text\":\"a\",\"label\":\"en\"}\n{\"text\":\"b\",\"label\":\"en\"}\n",
        );
        let e = load_examples(&p, true).unwrap_err().to_string();
        assert!(e.contains("at least two labels"), "{e}");
        assert!(load_examples(&p, false).is_ok());
    }
}

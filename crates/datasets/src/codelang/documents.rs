//! Which installed files are documents of the data set, and their labels.

use serde::Serialize;

/// The languages and the file extensions that mark them.
pub const LANGUAGES: [(&str, &[&str]); 6] = [
    ("C", &["c", "h"]),
    ("Go", &["go"]),
    ("JavaScript", &["js", "mjs", "cjs"]),
    ("Perl", &["pm", "pl"]),
    ("Python", &["py"]),
    ("Rust", &["rs"]),
];

/// Documents are whole files of this many bytes or more: short files (an `__init__.py`,
/// a one-struct header) say little, and the data set is about long documents.
pub const MIN_BYTES: usize = 4 * 1024;
/// And at most this many: beyond it files are mostly generated tables, and a test set of
/// them would take the model hours to read on two cores.
pub const MAX_BYTES: usize = 64 * 1024;
/// A line longer than this marks minified or generated code, not source as written.
pub const MAX_LINE: usize = 1000;

/// One whole file, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Document {
    /// The file's contents.
    pub text: String,
    /// Its language.
    pub label: String,
    /// The Debian package that installed it.
    pub package: String,
    /// That package's licence (from its copyright file).
    pub license: String,
    /// Where the package installed it.
    pub path: String,
}

/// The language a file's extension marks, if any.
pub fn language_of(path: &str) -> Option<&'static str> {
    let name = path.rsplit('/').next()?;
    let (_, ext) = name.rsplit_once('.')?;
    LANGUAGES
        .iter()
        .find(|(_, exts)| exts.contains(&ext))
        .map(|(label, _)| *label)
}

/// Whether `path` is, by its name, a built artefact rather than a source file: a
/// bundle (the concatenation of many modules) or minified code.
fn built_artefact(path: &str) -> bool {
    path.contains("/dist/") || path.contains(".min.") || path.contains(".bundle.")
}

/// The file's text when it is a document of the data set: the size bounds, UTF-8, no
/// overlong line, not a built artefact.
pub fn document_text(path: &str, bytes: Vec<u8>) -> Option<String> {
    if !(MIN_BYTES..=MAX_BYTES).contains(&bytes.len()) || built_artefact(path) {
        return None;
    }
    let text = String::from_utf8(bytes).ok()?;
    let written = text.lines().all(|l| l.len() <= MAX_LINE);
    written.then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_by_extension() {
        assert_eq!(language_of("/usr/include/curl/curl.h"), Some("C"));
        assert_eq!(
            language_of("/usr/share/perl5/LWP/UserAgent.pm"),
            Some("Perl")
        );
        assert_eq!(
            language_of("/usr/share/nodejs/acorn/index.mjs"),
            Some("JavaScript")
        );
        assert_eq!(language_of("/usr/share/doc/x/README"), None);
        assert_eq!(language_of("/usr/share/doc/x.d/notes.txt"), None);
    }

    #[test]
    fn keeps_long_source_and_drops_the_rest() {
        let line = "int x = 1;\n";
        let source = line.repeat(MIN_BYTES / line.len() + 1);
        assert!(document_text("/a/b.c", source.clone().into_bytes()).is_some());
        assert!(
            document_text("/a/b.c", b"int x;\n".to_vec()).is_none(),
            "short"
        );
        let huge = line.repeat(MAX_BYTES / line.len() + 1);
        assert!(document_text("/a/b.c", huge.into_bytes()).is_none(), "long");
        let minified = format!("{source}{}\n", "x".repeat(MAX_LINE + 1));
        assert!(document_text("/a/b.js", minified.into_bytes()).is_none());
        assert!(document_text("/a/dist/b.js", source.clone().into_bytes()).is_none());
        let mut latin1 = source.into_bytes();
        latin1.push(0xE9);
        assert!(document_text("/a/b.c", latin1).is_none(), "not UTF-8");
    }
}

//! What an installed Debian package holds: its files (dpkg's own list) and its licence
//! (the machine-readable `copyright` file Debian ships with every package).

use std::path::{Path, PathBuf};

/// The paths dpkg installed for `package` under the file-system `root`, as listed in
/// `var/lib/dpkg/info/<package>.list` (or `<package>:<arch>.list` for a library that can
/// be installed for several architectures). `None` when the package is not installed.
pub fn installed_files(root: &Path, package: &str) -> std::io::Result<Option<Vec<String>>> {
    let info = root.join("var/lib/dpkg/info");
    let plain = info.join(format!("{package}.list"));
    let list = if plain.exists() {
        Some(plain)
    } else {
        arch_qualified_list(&info, package)?
    };
    let Some(list) = list else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(&list)?;
    let mut files: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with('/'))
        .map(String::from)
        .collect();
    files.sort();
    Ok(Some(files))
}

fn arch_qualified_list(info: &Path, package: &str) -> std::io::Result<Option<PathBuf>> {
    let prefix = format!("{package}:");
    let mut found: Vec<PathBuf> = std::fs::read_dir(info)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".list"))
        })
        .collect();
    found.sort();
    Ok(found.into_iter().next())
}

/// The installed path `path` (absolute, as dpkg lists it) under `root`.
pub fn under_root(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

/// The licence of the package's own files: the `License:` of the `Files: *` paragraph of
/// `usr/share/doc/<package>/copyright` (Debian's machine-readable format), else its first
/// `License:` line, else `unknown`.
pub fn license(root: &Path, package: &str) -> String {
    let path = root.join(format!("usr/share/doc/{package}/copyright"));
    std::fs::read(&path)
        .ok()
        .and_then(|bytes| license_of(&String::from_utf8_lossy(&bytes)))
        .unwrap_or_else(|| "unknown".into())
}

/// The first non-empty value of the field `name` (with its colon) in a paragraph.
fn field(paragraph: &str, name: &str) -> Option<String> {
    paragraph.lines().find_map(|l| {
        l.strip_prefix(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    })
}

fn license_of(copyright: &str) -> Option<String> {
    let paragraphs: Vec<&str> = copyright.split("\n\n").collect();
    paragraphs
        .iter()
        .find(|p| field(p, "Files:").is_some_and(|f| f.split_whitespace().next() == Some("*")))
        .and_then(|p| field(p, "License:"))
        .or_else(|| paragraphs.iter().find_map(|p| field(p, "License:")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn license_of_the_catch_all_paragraph() {
        let dep5 = "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\
                    \n\
                    Files: debian/*\nCopyright: 2020 Someone\nLicense: GPL-2+\n\
                    \n\
                    Files: *\nCopyright: 2019 Upstream\nLicense: MIT or Apache-2.0\n";
        assert_eq!(license_of(dep5).as_deref(), Some("MIT or Apache-2.0"));
        let loose = "Files: src/*\nLicense: BSD-3-clause\n";
        assert_eq!(license_of(loose).as_deref(), Some("BSD-3-clause"));
        assert_eq!(license_of("This package is free software."), None);
    }
}

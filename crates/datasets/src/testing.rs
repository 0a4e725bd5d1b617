//! A file-system root laid out as dpkg leaves one, for tests of [`crate::codelang`]
//! (feature `test-support`): the builder reads packages only through these files, so a
//! test can stand in any set of packages without installing anything.

use std::io;
use std::path::Path;

/// One package as dpkg records it: its files under `usr/src/<name>/`, the list of them in
/// `var/lib/dpkg/info`, and a `copyright` in `usr/share/doc/<name>/`.
#[derive(Debug, Clone, Default)]
pub struct FakePackage<'a> {
    /// The package name.
    pub name: &'a str,
    /// Name the list `<name>:amd64.list`, as dpkg does for a `Multi-Arch: same` package,
    /// instead of `<name>.list`.
    pub multiarch: bool,
    /// The whole `copyright` file (DEP-5 stanzas).
    pub copyright: &'a str,
    /// `(path under usr/src/<name>/, contents)` of each file.
    pub files: Vec<(String, String)>,
}

impl FakePackage<'_> {
    /// Writes the package under `root`. Its list starts with directories, as dpkg's do.
    pub fn install(&self, root: &Path) -> io::Result<()> {
        let name = self.name;
        let info = root.join("var/lib/dpkg/info");
        std::fs::create_dir_all(&info)?;
        let mut list = format!("/.\n/usr/src/{name}\n");
        for (file, text) in &self.files {
            let path = format!("usr/src/{name}/{file}");
            let on_disk = root.join(&path);
            if let Some(dir) = on_disk.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(on_disk, text)?;
            list.push_str(&format!("/{path}\n"));
        }
        let arch = if self.multiarch { ":amd64" } else { "" };
        std::fs::write(info.join(format!("{name}{arch}.list")), list)?;
        let doc = root.join(format!("usr/share/doc/{name}"));
        std::fs::create_dir_all(&doc)?;
        std::fs::write(doc.join("copyright"), self.copyright)
    }
}

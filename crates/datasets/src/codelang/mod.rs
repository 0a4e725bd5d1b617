//! `codelang`: whole source files labelled by programming language, from installed
//! Debian packages, held out by package.
//!
//! Every document is one real file as its package installed it (C headers, Go, JavaScript,
//! Perl, Python and Rust sources), 4 to 64 KB, with its package and licence recorded.
//! The packages are listed in `packages.txt` beside this module, so the data set is
//! rebuilt from a fixed list by `scripts/fetch-codelang-data.sh` (which installs them)
//! and `seqless data codelang`.

mod documents;
mod dpkg;
mod split;
mod summary;

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use rand::{SeedableRng, rngs::StdRng, seq::SliceRandom};

pub use documents::{Document, LANGUAGES, MAX_BYTES, MIN_BYTES, language_of};
pub use split::Split;

/// The package list: `LANGUAGE PACKAGE` per line, `#` comments.
pub const PACKAGES: &str = include_str!("packages.txt");

/// How to build the data set; with the `clap` feature, the flags of a command that builds
/// it (a package is capped at `per_package` documents so that no package dominates its
/// language).
#[derive(Debug, Clone)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct Options {
    /// Directory to write train.jsonl, valid.jsonl, test.jsonl and train-windows.jsonl into.
    #[cfg_attr(feature = "clap", arg(long))]
    pub out: PathBuf,
    /// File-system root the listed packages are installed under.
    #[cfg_attr(feature = "clap", arg(long, default_value = "/"))]
    pub root: PathBuf,
    /// Seed of the file sample, the package split and the training windows.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 7))]
    pub seed: u64,
    /// Most documents taken from one package.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 16))]
    pub per_package: usize,
    /// Longest training window, in bytes (whole lines).
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 1024))]
    pub window: usize,
    /// Training windows cut from each training document.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 2))]
    pub windows_per_doc: usize,
}

/// Parses a package list: `(language, package)` pairs in file order.
pub fn parse_packages(list: &str) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for (i, line) in list.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let (Some(label), Some(package), None) = (fields.next(), fields.next(), fields.next())
        else {
            bail!(
                "package list line {}: expected LANGUAGE PACKAGE, got {line:?}",
                i + 1
            );
        };
        if !LANGUAGES.iter().any(|(l, _)| *l == label) {
            bail!("package list line {}: unknown language {label:?}", i + 1);
        }
        out.push((label.to_string(), package.to_string()));
    }
    Ok(out)
}

/// Builds the data set from [`PACKAGES`] and returns the printed summary.
pub fn build(options: &Options) -> Result<String> {
    build_from(options, &parse_packages(PACKAGES)?)
}

/// Builds the data set from the listed packages: `train.jsonl`, `valid.jsonl` and
/// `test.jsonl` of whole documents, and `train-windows.jsonl` of line-aligned windows of
/// the training documents.
pub fn build_from(options: &Options, packages: &[(String, String)]) -> Result<String> {
    if options.window == 0 || options.per_package == 0 {
        bail!("--window and --per-package must be at least 1");
    }
    let mut rng = StdRng::seed_from_u64(options.seed);
    let per_package = collect(options, packages, &mut rng)?;

    let mut by_label: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (label, package) in packages {
        if per_package.get(package).is_some_and(|d| !d.is_empty()) {
            by_label.entry(label).or_default().push(package.clone());
        }
    }
    let mut splits: BTreeMap<Split, Vec<Document>> = BTreeMap::new();
    for (label, mut names) in by_label {
        names.sort();
        names.dedup();
        let assigned = split::assign(&names, &mut rng).with_context(|| {
            format!(
                "{label}: only {} packages with documents; 3 are needed",
                names.len()
            )
        })?;
        for (package, split) in assigned {
            splits
                .entry(split)
                .or_default()
                .extend(per_package[&package].iter().cloned());
        }
    }
    for docs in splits.values_mut() {
        docs.sort_by(|a, b| (&a.label, &a.package, &a.path).cmp(&(&b.label, &b.package, &b.path)));
    }
    let train = splits.get(&Split::Train).cloned().unwrap_or_default();
    let windows = training_windows(&train, options, &mut rng);

    std::fs::create_dir_all(&options.out)
        .with_context(|| format!("creating {}", options.out.display()))?;
    let mut out = summary::header();
    for split in Split::ALL {
        let docs = splits.get(&split).map(Vec::as_slice).unwrap_or_default();
        write_jsonl(&options.out.join(format!("{}.jsonl", split.name())), docs)?;
        out.push_str(&summary::table(split.name(), docs));
    }
    write_jsonl(&options.out.join("train-windows.jsonl"), &windows)?;
    out.push_str(&summary::table("train-windows", &windows));
    Ok(out)
}

/// Each listed package's documents: a seeded sample of at most `per_package` of its
/// files that pass the filters, with files already taken from an earlier package (the
/// same bytes installed twice) left out.
fn collect(
    options: &Options,
    packages: &[(String, String)],
    rng: &mut StdRng,
) -> Result<HashMap<String, Vec<Document>>> {
    let mut missing = Vec::new();
    let mut seen: HashMap<u64, Vec<(String, usize)>> = HashMap::new();
    let mut out: HashMap<String, Vec<Document>> = HashMap::new();
    for (label, package) in packages {
        let files = dpkg::installed_files(&options.root, package)
            .with_context(|| format!("reading dpkg's file list of {package}"))?;
        let Some(files) = files else {
            missing.push(package.as_str());
            continue;
        };
        let license = dpkg::license(&options.root, package);
        let mut docs = Vec::new();
        for path in files {
            if language_of(&path) != Some(label.as_str()) {
                continue;
            }
            let on_disk = dpkg::under_root(&options.root, &path);
            if !is_regular_file(&on_disk) {
                continue;
            }
            let bytes = std::fs::read(&on_disk)
                .with_context(|| format!("reading {}", on_disk.display()))?;
            let Some(text) = documents::document_text(&path, bytes) else {
                continue;
            };
            docs.push(Document {
                text,
                label: label.clone(),
                package: package.clone(),
                license: license.clone(),
                path,
            });
        }
        docs.shuffle(rng);
        let mut kept = Vec::new();
        for doc in docs {
            if kept.len() == options.per_package {
                break;
            }
            let key = content_key(&doc.text);
            let earlier = seen.entry(key).or_default();
            let duplicate = earlier.iter().any(|(p, i)| {
                let other: &Document = if p == package { &kept[*i] } else { &out[p][*i] };
                other.text == doc.text
            });
            if !duplicate {
                earlier.push((package.clone(), kept.len()));
                kept.push(doc);
            }
        }
        out.insert(package.clone(), kept);
    }
    if !missing.is_empty() {
        bail!(
            "{} listed packages are not installed under {} (first: {}); install them with \
             scripts/fetch-codelang-data.sh",
            missing.len(),
            options.root.display(),
            missing[..missing.len().min(5)].join(", ")
        );
    }
    Ok(out)
}

/// A regular file, not a link (dpkg lists links to files other packages own) or a
/// directory.
fn is_regular_file(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_file())
}

/// A hash of a document's text to find repeated files; equal keys are compared in full.
fn content_key(text: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

/// Up to `windows_per_doc` windows of each training document: its line-aligned pieces
/// of at most `window` bytes (see [`crate::windows`]), those at least half a window long
/// when there are any, chosen by the seeded generator.
fn training_windows(train: &[Document], options: &Options, rng: &mut StdRng) -> Vec<Document> {
    let mut out = Vec::new();
    for doc in train {
        let pieces = crate::windows::line_windows(&doc.text, options.window);
        let mut full: Vec<&str> = pieces
            .iter()
            .copied()
            .filter(|p| p.len() * 2 >= options.window)
            .collect();
        if full.is_empty() {
            full = pieces;
        }
        full.shuffle(rng);
        out.extend(
            full.into_iter()
                .take(options.windows_per_doc)
                .map(|piece| Document {
                    text: piece.to_string(),
                    ..doc.clone()
                }),
        );
    }
    out
}

fn write_jsonl(path: &Path, docs: &[Document]) -> Result<()> {
    let mut text = String::new();
    for d in docs {
        text.push_str(&serde_json::to_string(d)?);
        text.push('\n');
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

//! The language-identification data set: the test sentences shipped in the
//! `lingua-*-language-model` crates (Apache-2.0, taken from the Leipzig corpora), held out
//! by sentence, with documents of 1 to 250 sentences. Only built with the `langid`
//! feature, so nothing else carries the corpus.

use std::path::Path;

use anyhow::{Context, Result};
use include_dir::Dir;
use rand::{Rng, SeedableRng, rngs::StdRng, seq::SliceRandom};
use seqless_model::train::{Example, write_jsonl};

/// ISO 639-1 code and the crate's test-data directory. Spanish is left out: its
/// sentences in these crates lost their accented letters.
const LANGUAGES: [(&str, Dir<'static>); 24] = [
    (
        "ar",
        lingua_arabic_language_model::ARABIC_TESTDATA_DIRECTORY,
    ),
    (
        "bg",
        lingua_bulgarian_language_model::BULGARIAN_TESTDATA_DIRECTORY,
    ),
    ("cs", lingua_czech_language_model::CZECH_TESTDATA_DIRECTORY),
    (
        "de",
        lingua_german_language_model::GERMAN_TESTDATA_DIRECTORY,
    ),
    ("el", lingua_greek_language_model::GREEK_TESTDATA_DIRECTORY),
    (
        "en",
        lingua_english_language_model::ENGLISH_TESTDATA_DIRECTORY,
    ),
    (
        "et",
        lingua_estonian_language_model::ESTONIAN_TESTDATA_DIRECTORY,
    ),
    (
        "fi",
        lingua_finnish_language_model::FINNISH_TESTDATA_DIRECTORY,
    ),
    (
        "fr",
        lingua_french_language_model::FRENCH_TESTDATA_DIRECTORY,
    ),
    (
        "he",
        lingua_hebrew_language_model::HEBREW_TESTDATA_DIRECTORY,
    ),
    ("hi", lingua_hindi_language_model::HINDI_TESTDATA_DIRECTORY),
    (
        "hu",
        lingua_hungarian_language_model::HUNGARIAN_TESTDATA_DIRECTORY,
    ),
    (
        "it",
        lingua_italian_language_model::ITALIAN_TESTDATA_DIRECTORY,
    ),
    (
        "ja",
        lingua_japanese_language_model::JAPANESE_TESTDATA_DIRECTORY,
    ),
    (
        "ko",
        lingua_korean_language_model::KOREAN_TESTDATA_DIRECTORY,
    ),
    (
        "lt",
        lingua_lithuanian_language_model::LITHUANIAN_TESTDATA_DIRECTORY,
    ),
    (
        "lv",
        lingua_latvian_language_model::LATVIAN_TESTDATA_DIRECTORY,
    ),
    ("nl", lingua_dutch_language_model::DUTCH_TESTDATA_DIRECTORY),
    (
        "pl",
        lingua_polish_language_model::POLISH_TESTDATA_DIRECTORY,
    ),
    (
        "pt",
        lingua_portuguese_language_model::PORTUGUESE_TESTDATA_DIRECTORY,
    ),
    (
        "ru",
        lingua_russian_language_model::RUSSIAN_TESTDATA_DIRECTORY,
    ),
    (
        "sv",
        lingua_swedish_language_model::SWEDISH_TESTDATA_DIRECTORY,
    ),
    (
        "tr",
        lingua_turkish_language_model::TURKISH_TESTDATA_DIRECTORY,
    ),
    (
        "zh",
        lingua_chinese_language_model::CHINESE_TESTDATA_DIRECTORY,
    ),
];
/// Sentences per language kept for the held-out test documents; the rest train.
const TEST_SENTENCES: usize = 200;
/// Multi-sentence documents per language and split (2 to 12 sentences).
const MULTI_DOCS: usize = 40;
/// Long documents per language in the test split (100 to 250 sentences, ~10-40 KB).
const LONG_TEST_DOCS: usize = 2;

/// The crates' word lists, optionally added to the training documents: 800 sentences
/// a language cover little vocabulary, and a byte model learns a language largely by
/// its words.
const WORD_LISTS: [&str; 2] = ["single-words.txt", "word-pairs.txt"];

fn lines(code: &str, dir: &Dir<'static>, name: &str) -> Result<Vec<String>> {
    let file = dir
        .get_file(name)
        .with_context(|| format!("{code}: no {name} in the crate"))?;
    let text = file
        .contents_utf8()
        .with_context(|| format!("{code}: {name} is not UTF-8"))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect())
}

fn documents(
    pool: &[String],
    count: usize,
    sentences: std::ops::RangeInclusive<usize>,
    label: &str,
    rng: &mut StdRng,
) -> Vec<Example> {
    (0..count)
        .map(|_| {
            let n = rng.random_range(sentences.clone());
            let text: Vec<&str> = (0..n)
                .map(|_| pool[rng.random_range(0..pool.len())].as_str())
                .collect();
            Example {
                text: text.join(" ").into_bytes(),
                label: label.to_string(),
            }
        })
        .collect()
}

/// The word-list entries of a language that occur nowhere in its held-out sentences
/// (compared in lower case), so no test sentence is seen in part during training.
fn unseen_in(held: &[String], code: &str, dir: &Dir<'static>) -> Result<Vec<String>> {
    let held_text = held.join("\n").to_lowercase();
    let mut kept = Vec::new();
    for name in WORD_LISTS {
        kept.extend(
            lines(code, dir, name)?
                .into_iter()
                .filter(|w| !held_text.contains(&w.to_lowercase())),
        );
    }
    Ok(kept)
}

/// Writes `train.jsonl`, `test.jsonl` (all held-out documents) and `test-single.jsonl`
/// (held-out documents of one sentence) under `out`.
pub fn build(out: &Path, seed: u64, word_lists: bool) -> Result<String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut train, mut test, mut single) = (Vec::new(), Vec::new(), Vec::new());
    let mut words_kept = 0usize;
    for (code, dir) in &LANGUAGES {
        let mut all = lines(code, dir, "sentences.txt")?;
        all.shuffle(&mut rng);
        let (held, rest) = all.split_at(TEST_SENTENCES.min(all.len() / 2));
        for s in held {
            single.push(Example {
                text: s.as_bytes().to_vec(),
                label: code.to_string(),
            });
        }
        train.extend(rest.iter().map(|s| Example {
            text: s.as_bytes().to_vec(),
            label: code.to_string(),
        }));
        train.extend(documents(rest, MULTI_DOCS, 2..=12, code, &mut rng));
        let words = if word_lists {
            unseen_in(held, code, dir)?
        } else {
            Vec::new()
        };
        words_kept += words.len();
        train.extend(words.into_iter().map(|w| Example {
            text: w.into_bytes(),
            label: code.to_string(),
        }));
        test.extend(documents(held, MULTI_DOCS, 2..=12, code, &mut rng));
        test.extend(documents(held, LONG_TEST_DOCS, 100..=250, code, &mut rng));
    }
    test.extend(single.iter().cloned());
    train.shuffle(&mut rng);
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    write_jsonl(&out.join("train.jsonl"), &train)?;
    write_jsonl(&out.join("test.jsonl"), &test)?;
    write_jsonl(&out.join("test-single.jsonl"), &single)?;
    let longest = test.iter().map(|e| e.text.len()).max().unwrap_or(0);
    Ok(format!(
        "{} languages: {} training documents ({words_kept} from the word lists), {} test documents ({} of one sentence, longest {longest} bytes) in {}",
        LANGUAGES.len(),
        train.len(),
        test.len(),
        single.len(),
        out.display()
    ))
}

//! Builders of seqless's data sets and the fixed baseline their models are scored against.
//!
//! - [`langid`] (feature `langid`): sentences in 24 languages from the lingua crates.
//! - [`codelang`]: whole source files labelled by programming language, read from
//!   installed Debian packages and held out by package.
//! - [`naive_bayes`]: byte n-gram multinomial naive Bayes with its smoothing and order
//!   tuned on a validation split.
//! - [`testing`] (feature `test-support`): fake dpkg roots for the builders' tests.

pub mod codelang;
#[cfg(feature = "langid")]
pub mod langid;
pub mod naive_bayes;
#[cfg(feature = "test-support")]
pub mod testing;
pub mod windows;

//! `seqless data ...`: the builders live in `seqless-datasets`; this prints their summaries.

use anyhow::Result;

use seqless_datasets::codelang::Options;

use crate::cli::LangidArgs;

/// `seqless data langid`: the corpus is compiled in only with the `langid-data` feature,
/// so the default binary carries none of it.
#[cfg(feature = "langid-data")]
pub fn langid(args: LangidArgs) -> Result<()> {
    let summary = seqless_datasets::langid::build(&args.out, args.seed, args.word_lists)?;
    eprintln!("{summary}");
    Ok(())
}

#[cfg(not(feature = "langid-data"))]
pub fn langid(_: LangidArgs) -> Result<()> {
    anyhow::bail!(
        "this seqless was built without the corpus; rebuild with \
         `cargo run --release -p seqless --features langid-data -- data langid --out DIR`"
    )
}

/// `seqless data codelang`: whole source files from installed Debian packages.
pub fn codelang(options: Options) -> Result<()> {
    let summary = seqless_datasets::codelang::build(&options)?;
    print!("{summary}");
    Ok(())
}

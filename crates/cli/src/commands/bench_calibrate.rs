//! `seqless bench calibrate`: measures what the simulator needs on the real system
//! (`seqless_bench::calibrate`) and writes it as a `seqless simulate --calibration` file.

use anyhow::{Context, Result};
use seqless_bench::calibrate::{Queries, calibrate};
use seqless_coordinator::BatchPolicy;

use super::exec::Caller;
use crate::cli::BenchCalibrateArgs;

/// Runs `seqless bench calibrate`.
pub fn run(args: BenchCalibrateArgs) -> Result<()> {
    let config = seqless_model::ModelConfig::load_from(&args.model)?;
    let rt = super::exec::runtime()?;
    let calibration = rt.block_on(async {
        let coordinator = args
            .serverless
            .coordinator(
                &args.model,
                config,
                &args.plan,
                Caller::Command,
                BatchPolicy::Off,
            )
            .await?;
        let corpus = super::read_corpus(args.text_file.as_deref())?;
        let queries = Queries {
            sizes: &args.bytes,
            runs: args.runs,
            corpus: corpus.as_deref(),
        };
        anyhow::Ok(calibrate(&coordinator, &queries, |note| eprintln!("{note}")).await?)
    })?;
    let json = serde_json::to_string_pretty(&calibration)? + "\n";
    std::fs::write(&args.out, &json).with_context(|| format!("writing {}", args.out.display()))?;
    println!("{json}");
    eprintln!(
        "wrote {} (use it with `seqless simulate --calibration {}`)",
        args.out.display(),
        args.out.display()
    );
    Ok(())
}

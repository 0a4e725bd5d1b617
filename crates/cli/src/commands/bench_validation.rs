//! `seqless bench validation-chart`: the simulator's validation table as measured against
//! predicted (`seqless_bench::validation`).

use anyhow::Result;
use seqless_bench::args::ValidationChartArgs;
use seqless_bench::validation::{read_validation, validation_chart};

pub fn run(args: ValidationChartArgs) -> Result<()> {
    let rows = read_validation(&args.table)?;
    validation_chart(&rows, &args.plot)?;
    println!("wrote {}", args.plot.display());
    Ok(())
}

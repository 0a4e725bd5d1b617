//! `seqless function`: this binary as a Lambda function process (the `bootstrap`).

use anyhow::Result;

pub fn run() -> Result<()> {
    super::exec::runtime()?.block_on(seqless_functions::runtime::run())?;
    Ok(())
}

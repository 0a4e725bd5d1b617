//! `seqless baseline`: the naive Bayes baseline of `seqless-datasets`, tuned and scored.

use anyhow::Result;
use seqless_datasets::naive_bayes::tune_and_test;
use seqless_model::train::load_examples;

use crate::cli::BaselineArgs;

pub fn run(args: BaselineArgs) -> Result<()> {
    let train = load_examples(&args.train, true)?;
    let valid = load_examples(&args.valid, false)?;
    let test = load_examples(&args.test, false)?;
    let report = tune_and_test(&train, &valid, &test)?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    println!(
        "byte n-gram naive Bayes, orders 1..={} alpha {} (best validation macro-F1 {:.4}, accuracy {:.4})",
        report.chosen.order, report.chosen.alpha, report.valid.macro_f1, report.valid.accuracy
    );
    println!(
        "test: n = {}   accuracy = {:.4}   macro-F1 = {:.4}\n",
        report.test.n, report.test.accuracy, report.test.macro_f1
    );
    print!("{}", report.test.render_confusion());
    Ok(())
}

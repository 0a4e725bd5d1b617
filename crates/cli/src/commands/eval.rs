//! `seqless eval`: accuracy, macro-F1 and the confusion matrix on a labelled file.

use anyhow::Result;
use seqless_model::TfilmModel;
use seqless_model::train::{evaluate, load_examples};

use crate::cli::EvalArgs;

pub fn run(args: EvalArgs) -> Result<()> {
    let model = TfilmModel::load(&args.model)?;
    let examples = load_examples(&args.data, false)?;
    let evaluation = evaluate(&model, &examples)?;
    if args.json {
        println!("{}", serde_json::to_string(&evaluation)?);
    } else {
        println!(
            "n = {}   accuracy = {:.4}   macro-F1 = {:.4}\n",
            evaluation.n, evaluation.accuracy, evaluation.macro_f1
        );
        print!("{}", evaluation.render_confusion());
    }
    Ok(())
}

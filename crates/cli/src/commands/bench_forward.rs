//! `seqless bench forward`: the monolithic forward per layer and stage, against the GEMM
//! peak and the LSTM roofline of the same run (`seqless_bench::forward`).

use anyhow::Result;
use rand::{Rng, SeedableRng, rngs::StdRng};
use seqless_bench::forward::{Ceilings, FOOTNOTE};
use seqless_model::TfilmModel;

use seqless_bench::args::ForwardBenchArgs;

pub fn run(args: ForwardBenchArgs) -> Result<()> {
    let model = TfilmModel::load(&args.model)?;
    let threads = args.threads.max(1);
    let pool = super::thread_pool(Some(threads))?;
    let ceilings = pool.install(|| Ceilings::measure(&model, threads, args.runs));
    if !args.json {
        print!("{}", ceilings.render());
    }
    let mut rng = StdRng::seed_from_u64(1);
    for &n in &args.bytes {
        let input: Vec<u8> = (0..n).map(|_| rng.random()).collect();
        let row = pool.install(|| ceilings.time(&model, &input))?;
        if args.json {
            println!("{}", serde_json::to_string(&row)?);
        } else {
            print!("\n{}", row.render());
        }
    }
    if !args.json {
        println!("\nMedians of {} runs. {FOOTNOTE}", args.runs);
    }
    Ok(())
}

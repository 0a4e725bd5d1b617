//! `seqless simulate`: the discrete-event simulator of docs/simulator.md, serverless
//! functions against a fleet of instances on one seeded trace, with an optional load
//! sweep, the report files and the plots (`seqless_sim::SimulateArgs`).

use anyhow::Result;
use seqless_sim::SimulateArgs;

/// Runs `seqless simulate`.
pub fn run(args: SimulateArgs) -> Result<()> {
    let done = args.simulate()?;
    let written = match &args.out {
        Some(dir) => {
            seqless_sim::write_outputs(dir, &done.report, done.sweep.as_ref(), done.sizes.as_ref())?
        }
        None => Vec::new(),
    };
    if args.json {
        println!("{}", done.report.to_json());
        return Ok(());
    }
    print!("{}", done.report.render(&done.shape_label));
    if let Some(sweep) = &done.sweep {
        print!("{}", sweep.render());
    }
    if let Some(sizes) = &done.sizes {
        print!("{}", sizes.render());
    }
    if !written.is_empty() {
        println!("\nwrote:");
        for path in written {
            println!("  {}", path.display());
        }
    }
    Ok(())
}

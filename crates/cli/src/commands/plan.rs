//! `seqless plan`: every plan kind, split count and memory size for a query of a given
//! length, with predicted latency and cost (`seqless_sim::planner`), the Pareto frontier,
//! and the pick for an objective within an SLO.

use anyhow::Result;
use seqless_sim::PlannerArgs;
use seqless_sim::planner::Candidate;

pub fn run(args: PlannerArgs) -> Result<()> {
    let planned = args.plan()?;
    let (candidates, calibration) = (&planned.candidates, &planned.calibration);
    let chosen = planned.pick.as_ref();
    if args.json {
        let json = serde_json::json!({
            "bytes": args.bytes,
            "objective": args.objective,
            "slo_ms": args.slo_ms,
            "calibration": args.calibration,
            "candidates": candidates,
            "pick": chosen,
        });
        println!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(());
    }
    match &args.calibration {
        Some(path) => println!("calibration: {}", path.display()),
        None => println!(
            "calibration: the simulator's placeholder defaults; measure one with `seqless bench calibrate`"
        ),
    }
    println!(
        "predicted on a warm, idle deployment; every transfer through the store (inline values are not priced); memory above {} MB is not assumed to speed compute (unvalidated here)",
        calibration.cpu_reference_mb
    );
    println!("{}", Candidate::table_header());
    for c in candidates {
        println!("{}", c.row());
    }
    if let Some(layer_wise) = candidates
        .iter()
        .find(|c| c.feasible() && c.is_layer_wise())
    {
        println!(
            "layer-wise baseline (one function per layer, no sequence splits, as Gillis): {:.1} ms, ${:.9} per query at {} MB",
            layer_wise.latency_ms, layer_wise.cost_usd, layer_wise.memory_mb
        );
    }
    let slo = args
        .slo_ms
        .map_or(String::new(), |s| format!(" within {s} ms"));
    match chosen {
        Some(c) => println!(
            "pick ({:?}{slo}): {} plan, {} splits, {} MB: {:.1} ms, ${:.9} per query",
            args.objective,
            c.plan.as_str(),
            c.splits_used,
            c.memory_mb,
            c.latency_ms,
            c.cost_usd
        ),
        None => println!("no configuration can run this query (all refused above)"),
    }
    Ok(())
}

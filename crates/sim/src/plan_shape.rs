//! The real planner as a [`ShapeModel`], so a simulation runs the stage graph
//! `seqless classify --mode serverless` would run for the same model and flags.

use seqless_model::ModelConfig;
use seqless_plan::{
    DEFAULT_INLINE_MAX_BYTES, LAMBDA_PAYLOAD_BYTES, Limits, Plan, PlanKind, Splits, StageKind,
    StageOp, Transfer, plan, resident_traffic,
};

use crate::{Invocation, Phase, QueryShape, ShapeError, ShapeModel};

/// The planner's stage graph for one model, plan kind, split rule and limits.
///
/// Each plan phase becomes one sim [`Phase`] with one [`Invocation`] per stage:
/// - `kind` is `stage.kind.as_str()` (`conv`, `tfilm`, `head`, `classifier`), which must
///   have a calibration entry;
/// - `rows` is the work the calibration is per-row for, as in
///   [`SyntheticShape`](crate::SyntheticShape): for a conv stage the input rows it covers
///   (its output rows × the layer's pool), for `tfilm` and `head` the layer's blocks (LSTM
///   steps), for `classifier` the rows of the last activation;
/// - `bytes_in` and `bytes_out` are the plan's own accounting ([`Plan::traffic`]), less
///   the values that travel inline under `transfer` ([`Plan::store_traffic`]: those the
///   coordinator would send inline, up to the default `--inline-max-bytes`), which take
///   no store bandwidth or requests. Their trip through the Invoke API is not timed
///   beyond each invocation's calibrated overhead: values under 256 KiB inline measured
///   within the noise of the store on the local platform (docs/results.md, "Inline
///   values");
/// - `memory_mb` is the one function memory size, which is also the plan's memory bound.
#[derive(Debug, Clone)]
pub struct PlanShape {
    /// The model's `config.json`.
    pub config: ModelConfig,
    /// Which stage graph.
    pub kind: PlanKind,
    /// Conv functions per layer.
    pub splits: Splits,
    /// Memory bound and split limits.
    pub limits: Limits,
    /// How values move between the functions.
    pub transfer: Transfer,
}

impl PlanShape {
    /// Translates one plan of this shape's model into a query shape (see the type's
    /// documentation).
    fn shape_of_plan(&self, plan: &Plan) -> Result<QueryShape, ShapeError> {
        if plan.kind == PlanKind::Resident {
            return Ok(self.resident_shape(plan));
        }
        let memory_mb = self.limits.function_memory_mb;
        let traffic = match self.transfer {
            Transfer::Store => plan.traffic(&self.config),
            Transfer::Inline => {
                let inline =
                    plan.inline_keys(&self.config, LAMBDA_PAYLOAD_BYTES, DEFAULT_INLINE_MAX_BYTES);
                plan.store_traffic(&self.config, &inline)
            }
        };
        let phases = plan
            .phases
            .iter()
            .zip(traffic)
            .map(|(stages, traffic)| {
                stages
                    .iter()
                    .zip(traffic)
                    .map(|(stage, traffic)| {
                        let layer = &plan.layers[stage.layer];
                        let rows = match &stage.op {
                            StageOp::Conv { out_rows, .. } => {
                                out_rows.len() * self.config.layers[stage.layer].pool
                            }
                            StageOp::Tfilm { .. }
                            | StageOp::Head { .. }
                            | StageOp::PaperTfilm { .. } => layer.blocks,
                            StageOp::Classifier { .. } => layer.rows,
                            StageOp::Resident { .. } => {
                                return Err(ShapeError(
                                    "a resident stage outside a resident plan".into(),
                                ));
                            }
                        };
                        Ok(Invocation {
                            kind: stage.kind.as_str().to_string(),
                            rows,
                            bytes_in: traffic.bytes_in,
                            bytes_out: traffic.bytes_out,
                            memory_mb,
                            chain: None,
                        })
                    })
                    .collect::<Result<_, _>>()
                    .map(|invocations| Phase { invocations })
            })
            .collect::<Result<_, _>>()?;
        Ok(QueryShape { phases })
    }
}

impl PlanShape {
    /// A resident plan as alternating phases: each layer's conv, one invocation per split
    /// chained across the layers (one instance per split, billed while it waits), then
    /// the layer's TFiLM stage (the head after the last). A split's conv is timed as a conv
    /// stage over the same rows; its bytes are its own: halos, modulation blocks, edges
    /// and block statistics.
    fn resident_shape(&self, plan: &Plan) -> QueryShape {
        let memory_mb = self.limits.function_memory_mb;
        let stages = plan.phases.concat();
        let traffic = plan.traffic(&self.config).concat();
        let mut splits = Vec::new();
        let mut serial = Vec::new();
        for (stage, traffic) in stages.iter().zip(traffic) {
            match &stage.op {
                StageOp::Resident { input, layers, .. } => {
                    splits.push((layers, resident_traffic(&self.config, input, layers)));
                }
                _ => serial.push((stage, traffic)),
            }
        }
        let mut phases = Vec::new();
        for (l, (stage, traffic)) in serial.into_iter().enumerate() {
            let pool = self.config.layers[l].pool;
            let convs = splits
                .iter()
                .enumerate()
                .map(|(i, (layers, traffic))| Invocation {
                    kind: StageKind::Conv.as_str().to_string(),
                    rows: layers[l].out_rows.len() * pool,
                    bytes_in: traffic[l].bytes_in,
                    bytes_out: traffic[l].bytes_out,
                    memory_mb,
                    chain: Some(i),
                });
            phases.push(Phase {
                invocations: convs.collect(),
            });
            phases.push(Phase {
                invocations: vec![Invocation {
                    kind: stage.kind.as_str().to_string(),
                    rows: plan.layers[l].blocks,
                    bytes_in: traffic.bytes_in,
                    bytes_out: traffic.bytes_out,
                    memory_mb,
                    chain: None,
                }],
            });
        }
        QueryShape { phases }
    }
}

impl ShapeModel for PlanShape {
    fn shape(&self, input_len: usize) -> Result<QueryShape, ShapeError> {
        let plan = plan(
            &self.config,
            input_len,
            self.kind,
            self.splits,
            &self.limits,
        )
        .map_err(|e| ShapeError(e.to_string()))?;
        self.shape_of_plan(&plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use seqless_model::{GateActivation, Modulation, testing};

    fn shape(kind: PlanKind) -> PlanShape {
        let layers = "8:3:2:4,6:3:2:4,4:3:1:2";
        PlanShape {
            config: testing::config(4, layers, Modulation::Scale, GateActivation::Sigmoid, 2),
            kind,
            splits: Splits::Fixed(4),
            limits: Limits {
                function_memory_mb: 1769,
                ..Limits::default()
            },
            transfer: Transfer::Store,
        }
    }

    #[test]
    fn every_stage_is_an_invocation_with_the_plans_traffic() {
        for kind in [PlanKind::Fused, PlanKind::Paper] {
            let model = shape(kind);
            let p = plan(&model.config, 10_000, kind, model.splits, &model.limits).unwrap();
            let traffic = p.traffic(&model.config);
            let s = model.shape(10_000).unwrap();
            let invocations: Vec<&Invocation> =
                s.phases.iter().flat_map(|ph| &ph.invocations).collect();
            let stages: Vec<_> = p
                .phases
                .iter()
                .flatten()
                .zip(traffic.iter().flatten())
                .collect();
            assert_eq!(s.phases.len(), p.phases.len());
            assert_eq!(invocations.len(), stages.len());
            for (inv, (stage, t)) in invocations.iter().zip(&stages) {
                assert_eq!(inv.kind, stage.kind.as_str());
                assert_eq!((inv.bytes_in, inv.bytes_out), (t.bytes_in, t.bytes_out));
                assert_eq!(inv.memory_mb, 1769);
                assert!(inv.rows > 0, "{kind:?} {inv:?}");
            }
            // Layer 0's convs cover every input row once.
            let rows: usize = s.phases[0].invocations.iter().map(|i| i.rows).sum();
            assert_eq!(rows, p.padded_len);
        }
        let err = shape(PlanKind::Fused).shape((1 << 20) + 1).unwrap_err();
        assert!(!err.0.is_empty());
    }

    #[test]
    fn a_resident_plan_is_each_layer_of_chained_splits_then_its_serial_stage() {
        let model = shape(PlanKind::Resident);
        let p = plan(
            &model.config,
            10_000,
            PlanKind::Resident,
            model.splits,
            &model.limits,
        )
        .unwrap();
        let s = model.shape(10_000).unwrap();
        let layers = model.config.layers.len();
        assert_eq!(s.phases.len(), 2 * layers);
        for (l, pair) in s.phases.chunks(2).enumerate() {
            let chains: Vec<Option<usize>> = pair[0].invocations.iter().map(|i| i.chain).collect();
            assert_eq!(chains, [Some(0), Some(1), Some(2), Some(3)]);
            let serial = &pair[1].invocations;
            let kind = if l + 1 == layers { "head" } else { "tfilm" };
            assert_eq!(
                (serial.len(), serial[0].kind.as_str(), serial[0].chain),
                (1, kind, None)
            );
        }
        // The splits' conv rows cover every input row of the first layer once.
        let rows: usize = s.phases[0].invocations.iter().map(|i| i.rows).sum();
        assert_eq!(rows, p.padded_len);
        // The same bytes as the plan's own accounting, layer by layer.
        let moved = |s: &QueryShape| -> u64 {
            s.phases
                .iter()
                .flat_map(|ph| &ph.invocations)
                .map(|i| i.bytes_in + i.bytes_out)
                .sum()
        };
        let planned: u64 = p
            .traffic(&model.config)
            .concat()
            .iter()
            .map(|t| t.bytes_in + t.bytes_out)
            .sum();
        assert_eq!(moved(&s), planned);
    }
}

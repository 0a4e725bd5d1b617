//! The real planner as a [`ShapeModel`], so a simulation runs the stage graph
//! `seqless classify --mode serverless` would run for the same model and flags.

use seqless_model::ModelConfig;
use seqless_plan::{Limits, Plan, PlanKind, Splits, StageOp, plan};

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
/// - `bytes_in` and `bytes_out` are the plan's own accounting ([`Plan::traffic`]);
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
}

impl PlanShape {
    /// Translates one plan of this shape's model into a query shape (see the type's
    /// documentation).
    fn shape_of_plan(&self, plan: &Plan) -> Result<QueryShape, ShapeError> {
        let memory_mb = self.limits.function_memory_mb;
        let phases = plan
            .phases
            .iter()
            .zip(plan.traffic(&self.config))
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
                                    "the simulator does not model the resident plan yet; simulate fused or paper".into(),
                                ));
                            }
                        };
                        Ok(Invocation {
                            kind: stage.kind.as_str().to_string(),
                            rows,
                            bytes_in: traffic.bytes_in,
                            bytes_out: traffic.bytes_out,
                            memory_mb,
                        })
                    })
                    .collect::<Result<_, _>>()
                    .map(|invocations| Phase { invocations })
            })
            .collect::<Result<_, _>>()?;
        Ok(QueryShape { phases })
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
}

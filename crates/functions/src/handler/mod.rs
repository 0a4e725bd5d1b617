//! The stage handler: check the event, then one function per [`StageOp`] reads its inputs
//! from the store (or the event), runs the model's kernels off the async reactor, and
//! writes its outputs (or returns them inline).

mod io;
mod ops;

use std::sync::Arc;
use std::time::{Duration, Instant};

use seqless_model::{ModelFingerprint, TfilmModel};
use seqless_store::TensorStore;
use seqless_wire::{StageEvent, StageOp, StageResult};

use crate::error::FunctionError;
use io::StageIo;

/// What a function instance keeps between invocations: built once at its cold start.
pub struct FunctionContext {
    /// The model, loaded once.
    pub model: Arc<TfilmModel>,
    /// The model's fingerprint; events planned for another model are refused.
    pub fingerprint: ModelFingerprint,
    /// The shared store.
    pub store: Arc<dyn TensorStore>,
    /// Expiry of every key written, so a crashed query cleans itself up.
    pub ttl: Duration,
}

/// Runs one stage. The only place where a function touches the store or the kernels.
pub async fn handle(
    ctx: &FunctionContext,
    event: StageEvent,
) -> Result<StageResult, FunctionError> {
    if event.model != ctx.fingerprint {
        return Err(FunctionError::ModelMismatch {
            coordinator: event.model,
            function: ctx.fingerprint.clone(),
        });
    }
    let stage = event.stage;
    let layers = ctx.model.config.layers.len();
    if stage.layer >= layers {
        return Err(FunctionError::permanent(format!(
            "stage names layer {}, but the model has {layers} layers",
            stage.layer
        )));
    }
    let mut io = StageIo::new(ctx, event.query_id, event.inline, event.reply_inline);
    let at = ops::Layer {
        model: ctx.model.clone(),
        index: stage.layer,
    };
    let logits = match stage.op {
        StageOp::Conv {
            input,
            input_rows,
            film,
            out_rows,
            write_activation,
            write_max,
            write_min,
        } => {
            let writes = ops::ConvWrites {
                activation: write_activation,
                max: write_max,
                min: write_min,
            };
            let rows = ops::ConvRows {
                input: &input,
                total: input_rows,
                out: out_rows,
            };
            ops::conv(&mut io, at, rows, film.as_ref(), writes).await?;
            None
        }
        StageOp::Tfilm {
            block_max,
            write_h,
            signal,
        } => {
            ops::tfilm(&mut io, at, &block_max, &write_h, signal).await?;
            None
        }
        StageOp::Resident {
            input,
            layers,
            wait_ms,
        } => {
            let deadline = Instant::now() + Duration::from_millis(wait_ms);
            ops::resident(&mut io, at.model, stage.split, &input, &layers, deadline).await?;
            None
        }
        StageOp::Head {
            block_max,
            block_min,
        } => Some(ops::head(&mut io, at, &block_max, &block_min, stage.padded_len).await?),
        StageOp::PaperTfilm {
            activations,
            write_x,
        } => {
            ops::paper_tfilm(&mut io, at, &activations, &write_x).await?;
            None
        }
        StageOp::Classifier { activation } => {
            Some(ops::classifier(&mut io, at, activation, stage.padded_len).await?)
        }
    };
    io.check_replied()?;
    Ok(StageResult {
        compute_ms: io.compute.as_secs_f64() * 1e3,
        wait_ms: io.waited.as_secs_f64() * 1e3,
        cpu_ms: None,
        bytes_in: io.bytes_in,
        bytes_out: io.bytes_out,
        inline: io.inline_out,
        logits,
        init: None,
    })
}

//! `seqless serve`: the master node's HTTP API over the execution mode the flags choose.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use seqless_model::{CONFIG_FILE, ModelConfig, TfilmModel};
use seqless_server::{ApiToken, Batching, Engine, Metrics, Service, serve, shutdown_signal};

use super::exec::Caller;
use crate::cli::{Mode, ServeArgs};

/// The model's name in `GET /v1/models`: its directory's name.
fn model_name(args: &ServeArgs) -> String {
    let dir = args
        .model
        .canonicalize()
        .unwrap_or_else(|_| args.model.clone());
    dir.file_name().map_or_else(
        || dir.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

pub fn run(args: ServeArgs) -> Result<()> {
    let token = ApiToken::from_env_or_file(args.auth_token_file.as_deref())?;
    let limits = args.limits.limits();
    let budget_mib = limits.memory.budget_bytes >> 20;
    let deadline = limits.deadline;
    let rt = super::exec::runtime()?;
    rt.block_on(async {
        let metrics = Arc::new(Metrics::new());
        let engine = match args.exec.mode {
            Mode::Serverless => {
                // The functions hold the weights; the master needs only the config.
                let config = ModelConfig::load(&args.model.join(CONFIG_FILE))?;
                let exec = &args.exec;
                let batch = args
                    .batching
                    .stage_batches()
                    .map_err(super::UsageError)?;
                let caller = Caller::Service { deadline };
                let coordinator = exec
                    .serverless
                    .coordinator(&args.model, config, &exec.plan, caller, batch)
                    .await?;
                coordinator.observe_batches(metrics.stage_batch_observer());
                Engine::Serverless(Box::new(coordinator))
            }
            Mode::Monolithic => {
                let batching = Batching {
                    max: args.batching.batch_max,
                    wait: Duration::from_millis(args.batching.batch_wait_ms),
                };
                Engine::monolithic(TfilmModel::load(&args.model)?, Some(batching), &metrics)
            }
        };
        let mode = engine.mode();
        let auth = if token.is_some() {
            "bearer token required"
        } else {
            "no auth"
        };
        let service = Arc::new(Service::new(
            engine,
            model_name(&args),
            limits,
            metrics,
            token,
        ));
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        let addr = listener.local_addr()?;
        let stop = shutdown_signal();
        println!(
            "seqless serve: listening on http://{addr} ({mode}, {auth}, memory budget {budget_mib} MiB)"
        );
        std::io::stdout().flush()?;
        serve(listener, service, stop).await?;
        println!("seqless serve: stopped");
        Ok(())
    })
}

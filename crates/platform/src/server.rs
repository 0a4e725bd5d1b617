//! Starting and stopping the platform: the Invoke API listener and the idle reaper.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use seqless_wire::faults::FaultInjection;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::api::{Shared, router};
use crate::errors::PlatformError;
use crate::faults::Injector;
use crate::metrics::PlatformMetrics;
use crate::options::PlatformOptions;
use crate::pool::{Pool, WorkerInfo};

/// How long `shutdown` waits for killed processes to exit.
const STOP_PATIENCE: Duration = Duration::from_secs(5);

/// A running platform. Dropping it without [`PlatformServer::shutdown`] leaves the
/// processes to die with the runtime (they are spawned with kill-on-drop).
pub struct PlatformServer {
    addr: SocketAddr,
    pool: Arc<Pool>,
    stop: oneshot::Sender<()>,
    served: JoinHandle<()>,
    reaper: JoinHandle<()>,
}

impl PlatformServer {
    /// Checks the options, listens, and starts serving (no process starts before the
    /// first invocation).
    pub async fn start(options: PlatformOptions) -> Result<Self, PlatformError> {
        Self::start_with_faults(options, FaultInjection::default()).await
    }

    /// [`PlatformServer::start`], injecting `faults` into the invocations (docs/platform.md,
    /// "Fault injection"). The callers are not told: they see throttles, crashes, errors
    /// and stragglers as they would on Lambda.
    pub async fn start_with_faults(
        options: PlatformOptions,
        faults: FaultInjection,
    ) -> Result<Self, PlatformError> {
        options.validate()?;
        let faults = Injector::new(faults).map_err(|e| PlatformError::Options(e.to_string()))?;
        let bind = |reason| PlatformError::Bind {
            addr: options.listen,
            reason,
        };
        let listener = tokio::net::TcpListener::bind(options.listen)
            .await
            .map_err(bind)?;
        let addr = listener.local_addr().map_err(bind)?;
        let functions = options
            .functions()
            .into_iter()
            .map(|f| (f.name.clone(), Arc::new(f)))
            .collect();
        let metrics = Arc::new(PlatformMetrics::new());
        let period =
            (options.idle_timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
        let pool = Pool::new(options, metrics.clone(), faults);
        let shared = Arc::new(Shared {
            pool: pool.clone(),
            metrics,
            functions,
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let served = tokio::spawn(async move {
            let serve = axum::serve(listener, router(shared)).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "the Invoke API stopped");
            }
        });
        let reaping = Arc::downgrade(&pool);
        let reaper = tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            loop {
                tick.tick().await;
                match reaping.upgrade() {
                    Some(pool) => {
                        pool.reap();
                    }
                    None => break,
                }
            }
        });
        tracing::info!(%addr, "local Lambda platform listening");
        Ok(Self {
            addr,
            pool,
            stop,
            served,
            reaper,
        })
    }

    /// The Invoke API's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The Invoke API's base URL, for `--endpoint`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The function processes now.
    pub fn workers(&self) -> Vec<WorkerInfo> {
        self.pool.workers()
    }

    /// Stops taking invocations, kills every process and waits for them to exit.
    pub async fn shutdown(self) {
        let Self {
            pool,
            stop,
            served,
            reaper,
            ..
        } = self;
        let _ = stop.send(());
        reaper.abort();
        pool.stop_all(STOP_PATIENCE).await;
        if tokio::time::timeout(STOP_PATIENCE, served).await.is_err() {
            tracing::warn!("the Invoke API did not drain in time");
        }
    }
}

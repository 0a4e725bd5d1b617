//! Running the application on a listener until a shutdown signal, then draining: stop
//! accepting, let in-flight requests finish, wait for queries still running past their
//! deadline (so they delete their store keys), and return.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::routes::router;
use crate::service::Service;

/// Serves `service` on `listener` until `shutdown` completes, then drains. Returns an error
/// only if the listener fails.
pub async fn serve(
    listener: TcpListener,
    service: Arc<Service>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(service.clone());
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    // Requests are answered; queries past their deadline may still run in the background.
    let within = service.limits.deadline + Duration::from_secs(5);
    if !service.admission.drain(within).await {
        tracing::warn!(
            ?within,
            "queries still running at exit; their store keys expire with their TTL"
        );
    }
    Ok(())
}

/// Completes on SIGTERM or Ctrl-C (SIGINT): what a process manager or a terminal sends.
/// The handlers are installed by this call, not on the future's first poll, so a signal
/// sent as soon as the caller has announced itself (its "listening" line) is not met by
/// the default action, which would end the process with no drain.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let handlers = signal(SignalKind::terminate())
            .and_then(|term| Ok((term, signal(SignalKind::interrupt())?)));
        async move {
            match handlers {
                Ok((mut term, mut interrupt)) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = interrupt.recv() => {}
                    }
                }
                Err(err) => {
                    tracing::warn!(%err, "cannot listen for SIGTERM or Ctrl-C");
                    std::future::pending::<()>().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

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
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::warn!(%err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(err) => {
                tracing::warn!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down: draining in-flight queries");
}

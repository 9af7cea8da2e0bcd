//! The admin HTTP endpoint: `/health` (the process answers), `/ready` (it
//! takes calls: 503 while draining), `/metrics` (Prometheus text).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::admission::Admission;
use crate::metrics::Metrics;

#[derive(Clone)]
struct AdminState {
    metrics: Arc<Metrics>,
    admission: Arc<Admission>,
}

/// Bind and serve until `stop` fires. Returns the bound address.
pub async fn serve(
    listen: SocketAddr,
    metrics: Arc<Metrics>,
    admission: Arc<Admission>,
    stop: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let local = listener.local_addr()?;
    let app = Router::new()
        .route("/health", get(|| async { "ok\n" }))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics_text))
        .with_state(AdminState { metrics, admission });
    tokio::spawn(async move {
        let result = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
        if let Err(e) = result {
            warn!(error = %e, "admin HTTP server stopped");
        }
    });
    info!(address = %local, "admin HTTP listening (/health, /ready, /metrics)");
    Ok(local)
}

async fn ready(State(state): State<AdminState>) -> impl IntoResponse {
    if state.admission.is_draining() {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n")
    } else {
        (StatusCode::OK, "ready\n")
    }
}

async fn metrics_text(State(state): State<AdminState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render_prometheus(),
    )
}

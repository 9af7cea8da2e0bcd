//! The admin HTTP endpoint: `/health` (the process answers), `/ready` (it
//! takes calls: 503 while draining or while a part calls depend on is down,
//! see [`crate::health`]), `/metrics` (Prometheus text) and
//! `/calls/{call_id}` (a call's transcript so far, JSON); `POST /calls`
//! places a call (see [`crate::outbound::api`]), and the campaign routes
//! (`/campaigns…`, see [`crate::campaign::admin_routes`]), and the operator
//! console under `/console` when it is on (see [`crate::console`]).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::admission::Admission;
use crate::live_calls::LiveCalls;
use crate::metrics::Metrics;

#[derive(Clone)]
struct AdminState {
    metrics: Arc<Metrics>,
    admission: Arc<Admission>,
    live: Arc<LiveCalls>,
}

/// What the admin endpoint serves from: the engine's shared parts.
pub struct Services {
    pub metrics: Arc<Metrics>,
    pub admission: Arc<Admission>,
    pub live: Arc<LiveCalls>,
    pub campaigns: Option<Arc<crate::campaign::manager::Manager>>,
    pub dialer: crate::outbound::api::DialerCell,
    pub console: Option<Arc<crate::console::Console>>,
}

/// Bind and serve until `stop` fires. Returns the bound address.
pub async fn serve(
    listen: SocketAddr,
    services: Services,
    stop: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let Services {
        metrics,
        admission,
        live,
        campaigns,
        dialer,
        console,
    } = services;
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let local = listener.local_addr()?;
    let monitoring = Router::new()
        .route("/health", get(|| async { "ok\n" }))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics_text))
        .route("/calls/{call_id}", get(call_view));
    // `console.open_monitoring: false` puts these behind the console login,
    // the transcript view with them: it holds what callers said.
    let monitoring = match &console {
        Some(c) if !c.open_monitoring => monitoring.route_layer(
            axum::middleware::from_fn_with_state(c.clone(), crate::console::require_login),
        ),
        _ => monitoring,
    };
    let app = monitoring
        .with_state(AdminState {
            metrics,
            admission,
            live,
        })
        // POST /calls: place one call (engine/src/outbound/api.rs).
        .merge(crate::outbound::api::routes(dialer));
    // `/campaigns…` (campaign/admin_routes.rs).
    let app = match campaigns {
        Some(m) => app.merge(crate::campaign::admin_routes::router(m)),
        None => app,
    };
    let app = match console {
        Some(c) => app.merge(crate::console::router(c)),
        None => app,
    };
    tokio::spawn(async move {
        // The console's login limit needs the peer address.
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        let result = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
        if let Err(e) = result {
            warn!(error = %e, "admin HTTP server stopped");
        }
    });
    info!(address = %local, "admin HTTP listening (/health, /ready, /metrics, /calls/{{call_id}}, POST /calls)");
    Ok(local)
}

async fn ready(State(state): State<AdminState>) -> impl IntoResponse {
    if state.admission.is_draining() {
        return (StatusCode::SERVICE_UNAVAILABLE, "draining\n".to_string());
    }
    let down = state.metrics.health.down();
    if down.is_empty() {
        (StatusCode::OK, "ready\n".to_string())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("down: {}\n", down.join(", ")),
        )
    }
}

async fn metrics_text(State(state): State<AdminState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, crate::exposition::CONTENT_TYPE)],
        state.metrics.render_prometheus(),
    )
}

async fn call_view(
    State(state): State<AdminState>,
    Path(call_id): Path<String>,
) -> impl IntoResponse {
    let json = [(header::CONTENT_TYPE, "application/json")];
    match state.live.get(&call_id) {
        Some(view) => match serde_json::to_string(&view) {
            Ok(body) => (StatusCode::OK, json, body + "\n"),
            Err(e) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                json,
                format!("{{\"error\":\"{e}\"}}\n"),
            ),
        },
        None => (
            StatusCode::NOT_FOUND,
            json,
            "{\"error\":\"no such call\"}\n".to_string(),
        ),
    }
}

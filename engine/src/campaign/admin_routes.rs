//! The campaign routes of the admin API (JSON):
//! `GET /campaigns`, `POST /campaigns/start` (`{"file": PATH}`),
//! `GET /campaigns/{name}`, `POST /campaigns/{name}/pause|resume|stop`.

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use super::manager::{Manager, ManagerError};
use super::runner::Control;

/// The routes, to merge into the admin router.
pub fn router(manager: Arc<Manager>) -> Router {
    Router::new()
        .route("/campaigns", get(list))
        .route("/campaigns/start", post(start))
        .route("/campaigns/{name}", get(status))
        .route("/campaigns/{name}/{action}", post(control))
        .with_state(manager)
}

fn json(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body + "\n",
    )
        .into_response()
}

fn error(status: StatusCode, message: &str) -> Response {
    json(status, serde_json::json!({ "error": message }).to_string())
}

fn failed(e: ManagerError) -> Response {
    let status = match e {
        ManagerError::Unknown(_) => StatusCode::NOT_FOUND,
        ManagerError::Running(_) | ManagerError::BadState { .. } => StatusCode::CONFLICT,
        ManagerError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    };
    error(status, &e.to_string())
}

fn ok(value: impl serde::Serialize) -> Response {
    match serde_json::to_string(&value) {
        Ok(body) => json(StatusCode::OK, body),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

async fn list(State(m): State<Arc<Manager>>) -> Response {
    match m.list() {
        Ok(all) => ok(all),
        Err(e) => failed(e),
    }
}

#[derive(Deserialize)]
struct StartBody {
    file: PathBuf,
}

async fn start(State(m): State<Arc<Manager>>, body: Bytes) -> Response {
    let body: StartBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("body: {e} (send {{\"file\": PATH}})"),
            )
        }
    };
    match m.start(&body.file).await {
        Ok(report) => ok(report),
        Err(e) => failed(e),
    }
}

async fn status(State(m): State<Arc<Manager>>, Path(name): Path<String>) -> Response {
    match m.status(&name) {
        Ok(view) => ok(view),
        Err(e) => failed(e),
    }
}

async fn control(
    State(m): State<Arc<Manager>>,
    Path((name, action)): Path<(String, String)>,
) -> Response {
    let c = match action.as_str() {
        "pause" => Control::Pause,
        "resume" => Control::Resume,
        "stop" => Control::Stop,
        other => {
            return error(
                StatusCode::NOT_FOUND,
                &format!("no action {other:?}: use pause, resume or stop"),
            )
        }
    };
    match m.control(&name, c) {
        Ok(()) => ok(serde_json::json!({ "name": name, "requested": action })),
        Err(e) => failed(e),
    }
}

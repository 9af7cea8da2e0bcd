//! A Zendesk Support stand-in: the requests and replies the connector
//! uses, as documented (shapes, status codes and error bodies from the
//! pages below; data made up).
//!
//! - API token authentication, HTTP basic `{email}/token:{api_token}`; 401
//!   `{"error":"Couldn't authenticate you"}`:
//!   https://developer.zendesk.com/api-reference/introduction/security-and-auth/
//! - Search Users `GET /api/v2/users/search?query=`, reply
//!   `{"users": [...], "next_page", "previous_page", "count"}`; Show User
//!   `GET /api/v2/users/{user_id}` → `{"user": {...}}`, 404
//!   `{"error":"RecordNotFound","description":"Not found"}`:
//!   https://developer.zendesk.com/api-reference/ticketing/users/users/
//! - List Tickets `GET /api/v2/tickets?external_id=`, Create Ticket
//!   `POST /api/v2/tickets` with `{"ticket": {subject, comment: {body,
//!   public}, priority, status, type, due_at, requester_id | requester,
//!   external_id, tags}}` → 201 `{"ticket": {...}}`; 422 RecordInvalid:
//!   https://developer.zendesk.com/api-reference/ticketing/tickets/tickets/
//! - Idempotency: `Idempotency-Key` header on ticket creation; a repeat
//!   with the same key and body returns the first reply with
//!   `x-idempotency-lookup: hit` (first time `miss`); the same key with a
//!   different body is a 400 `IdempotentRequestError`:
//!   https://developer.zendesk.com/api-reference/ticketing/introduction/#idempotency

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use serde_json::{json, Value};

pub const AGENT: &str = "bot@example.com";
pub const API_TOKEN: &str = "6wiIBWbGkBMo1mRDMuVwkw1EPsNkeUj95PIz2akv";

#[derive(Default)]
pub struct Account {
    pub tickets: Mutex<Vec<Value>>,
    /// Idempotency-Key → (request body, reply)
    pub idempotency: Mutex<HashMap<String, (Value, Value)>>,
    pub creates: AtomicUsize,
}

fn users() -> Vec<Value> {
    vec![
        json!({"id": 35436, "name": "Li Wei", "email": "li.wei@example.cn", "phone": "+86 138 0013 8000",
               "role": "end-user", "locale": "zh-cn", "user_fields": {"support_plan": "premium"}}),
        json!({"id": 35437, "name": "Li Wei (old)", "email": "old@example.cn", "phone": "+86 139 0000 8000",
               "role": "end-user", "locale": "zh-cn", "user_fields": {"support_plan": null}}),
        json!({"id": 35438, "name": "Emma Brown", "email": "emma@example.co.uk", "phone": "020 7946 0018",
               "role": "end-user", "locale": "en-gb", "user_fields": {"support_plan": "basic"}}),
    ]
}

fn zd_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "description": description})),
    )
        .into_response()
}

fn authorised(headers: &HeaderMap) -> Result<(), Box<Response>> {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{AGENT}/token:{API_TOKEN}"))
    );
    if headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(expected.as_str()) {
        Ok(())
    } else {
        Err(Box::new(
            (
                StatusCode::UNAUTHORIZED,
                Json(json!({"error": "Couldn't authenticate you"})),
            )
                .into_response(),
        ))
    }
}

pub fn router(account: Arc<Account>) -> Router {
    Router::new()
        .route("/api/v2/users/search", get(search_users))
        .route("/api/v2/users/{id}", get(show_user))
        .route("/api/v2/tickets", get(list_tickets).post(create_ticket))
        .with_state(account)
}

async fn search_users(headers: HeaderMap, Query(q): Query<HashMap<String, String>>) -> Response {
    if let Err(r) = authorised(&headers) {
        return *r;
    }
    let query = q.get("query").cloned().unwrap_or_default();
    let wanted = super::digits(&query);
    // A loose match across fields, as the docs describe ("a partial or
    // full value of any user property").
    let hits: Vec<Value> = users()
        .into_iter()
        .filter(|u| {
            let phone = super::digits(u["phone"].as_str().unwrap_or(""));
            (wanted.len() >= 4 && phone.ends_with(&wanted[wanted.len() - 4..]))
                || u["name"]
                    .as_str()
                    .is_some_and(|n| !query.is_empty() && n.contains(&query))
        })
        .collect();
    let count = hits.len();
    Json(json!({"users": hits, "next_page": null, "previous_page": null, "count": count}))
        .into_response()
}

async fn show_user(headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(r) = authorised(&headers) {
        return *r;
    }
    match users()
        .into_iter()
        .find(|u| u["id"].as_u64().is_some_and(|n| n.to_string() == id))
    {
        Some(u) => Json(json!({"user": u})).into_response(),
        None => zd_error(StatusCode::NOT_FOUND, "RecordNotFound", "Not found"),
    }
}

async fn list_tickets(
    State(account): State<Arc<Account>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = authorised(&headers) {
        return *r;
    }
    let tickets = account.tickets.lock().expect("lock");
    let hits: Vec<Value> = tickets
        .iter()
        .filter(|t| {
            q.get("external_id")
                .is_none_or(|e| t["external_id"] == e.as_str())
        })
        .cloned()
        .collect();
    let count = hits.len();
    Json(json!({"tickets": hits, "next_page": null, "previous_page": null, "count": count}))
        .into_response()
}

async fn create_ticket(
    State(account): State<Arc<Account>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Err(r) = authorised(&headers) {
        return *r;
    }
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if let Some(k) = &key {
        if let Some((earlier, reply)) = account.idempotency.lock().expect("lock").get(k) {
            if earlier != &body {
                return zd_error(
                    StatusCode::BAD_REQUEST,
                    "IdempotentRequestError",
                    "The request body does not match the original request for this idempotency key",
                );
            }
            return (
                StatusCode::CREATED,
                [("x-idempotency-lookup", "hit")],
                Json(reply.clone()),
            )
                .into_response();
        }
    }
    let t = &body["ticket"];
    if t["comment"]["body"].as_str().is_none_or(str::is_empty) {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(
                json!({"error": "RecordInvalid", "description": "Record validation errors",
                        "details": {"base": [{"description": "Description: cannot be blank"}]}}),
            ),
        )
            .into_response();
    }
    let one_of = |field: &str, allowed: &[&str]| {
        t.get(field)
            .and_then(Value::as_str)
            .is_none_or(|v| allowed.contains(&v))
    };
    if !one_of("priority", &["urgent", "high", "normal", "low"])
        || !one_of(
            "status",
            &["new", "open", "pending", "hold", "solved", "closed"],
        )
        || !one_of("type", &["problem", "incident", "question", "task"])
        || (t.get("due_at").is_some() && t["type"] != "task")
    {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"error": "RecordInvalid", "description": "Record validation errors",
                        "details": {"base": [{"description": "invalid priority, status, type or due date"}]}})),
        )
            .into_response();
    }
    account.creates.fetch_add(1, Ordering::SeqCst);
    let mut tickets = account.tickets.lock().expect("lock");
    let mut stored = t.clone();
    let id = 1000 + tickets.len() as u64 + 1;
    stored["id"] = json!(id);
    stored["url"] = json!(format!(
        "https://example.zendesk.com/api/v2/tickets/{id}.json"
    ));
    stored["status"] = t.get("status").cloned().unwrap_or(json!("new"));
    stored["description"] = t["comment"]["body"].clone();
    if let Some(obj) = stored.as_object_mut() {
        obj.remove("comment");
    }
    tickets.push(stored.clone());
    let reply = json!({"ticket": stored});
    if let Some(k) = key {
        account
            .idempotency
            .lock()
            .expect("lock")
            .insert(k, (body.clone(), reply.clone()));
    }
    (
        StatusCode::CREATED,
        [("x-idempotency-lookup", "miss")],
        Json(reply),
    )
        .into_response()
}

//! A HubSpot stand-in: the CRM v3 requests and replies the connector uses,
//! as documented (shapes, status codes and error bodies from the pages
//! below; data made up).
//!
//! - Search `POST /crm/v3/objects/{object}/search`: `filterGroups` are ORed,
//!   filters inside a group ANDed, operator `EQ`; reply
//!   `{"total", "results": [{"id", "properties", "createdAt", "updatedAt",
//!   "archived"}]}`:
//!   https://developers.hubspot.com/docs/api/crm/search
//! - Contacts `GET /crm/v3/objects/contacts/{id}?properties=`:
//!   https://developers.hubspot.com/docs/api/crm/contacts
//! - Calls `POST /crm/v3/objects/calls` (`hs_timestamp` required,
//!   `hs_call_duration` in milliseconds, `hs_call_direction`,
//!   `hs_call_status`), associated to a contact with type id 194:
//!   https://developers.hubspot.com/docs/api/crm/calls
//! - Tickets `POST /crm/v3/objects/tickets` (`subject`, `hs_pipeline`,
//!   `hs_pipeline_stage` required; `hs_ticket_priority` LOW/MEDIUM/HIGH),
//!   ticket→contact type id 16:
//!   https://developers.hubspot.com/docs/api/crm/tickets
//! - Tasks `POST /crm/v3/objects/tasks` (`hs_timestamp` required,
//!   `hs_task_status`, `hs_task_priority`, `hs_task_type`), task→contact
//!   type id 204:
//!   https://developers.hubspot.com/docs/api/crm/tasks
//! - Default association type ids:
//!   https://developers.hubspot.com/docs/api/crm/associations/association-details
//! - Error bodies `{"status":"error","message","correlationId","category"}`
//!   (OBJECT_NOT_FOUND, VALIDATION_ERROR, INVALID_AUTHENTICATION):
//!   https://developers.hubspot.com/docs/api/error-handling
//!
//! One simplification: records are searchable as soon as they are created
//! (HubSpot indexes within seconds).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Map, Value};

pub const TOKEN: &str = "pat-na1-11111111-2222-3333-4444-555555555555";
pub const KEY_PROPERTY: &str = "voxbridge_key";

/// object type → id → properties
pub type Objects = BTreeMap<String, BTreeMap<String, Map<String, Value>>>;

#[derive(Default)]
pub struct Portal {
    pub objects: Mutex<Objects>,
    /// (object id, contact id, association type id)
    pub associations: Mutex<Vec<(String, String, u64)>>,
    pub creates: AtomicUsize,
}

impl Portal {
    pub fn seeded() -> Portal {
        let portal = Portal::default();
        let mut contacts = BTreeMap::new();
        for (id, first, last, phone, mobile, email, tier, lang) in [
            (
                "501",
                "Li",
                "Wei",
                "+8613800138000",
                "",
                "li.wei@example.cn",
                "VIP",
                "zh-cn",
            ),
            (
                "502",
                "Alice",
                "Johnson",
                "",
                "+15551234567",
                "alice@example.com",
                "",
                "en",
            ),
        ] {
            let mut p = Map::new();
            for (k, v) in [
                ("firstname", first),
                ("lastname", last),
                ("phone", phone),
                ("mobilephone", mobile),
                ("email", email),
                ("customer_tier", tier),
                ("hs_language", lang),
                ("hs_object_id", id),
            ] {
                if !v.is_empty() {
                    p.insert(k.into(), json!(v));
                }
            }
            contacts.insert(id.to_string(), p);
        }
        portal
            .objects
            .lock()
            .expect("lock")
            .insert("contacts".into(), contacts);
        portal
    }

    pub fn count(&self, object: &str) -> usize {
        self.objects
            .lock()
            .expect("lock")
            .get(object)
            .map(BTreeMap::len)
            .unwrap_or(0)
    }
}

/// Properties each object has in this portal (HubSpot defaults plus the
/// custom `voxbridge_key` and `customer_tier`).
fn known_properties(object: &str) -> &'static [&'static str] {
    match object {
        "contacts" => &[
            "firstname",
            "lastname",
            "email",
            "phone",
            "mobilephone",
            "customer_tier",
            "hs_language",
            "hs_object_id",
            "createdate",
            "lastmodifieddate",
        ],
        "calls" => &[
            "hs_timestamp",
            "hs_call_title",
            "hs_call_body",
            "hs_call_duration",
            "hs_call_from_number",
            "hs_call_to_number",
            "hs_call_recording_url",
            "hs_call_status",
            "hs_call_direction",
            "hs_call_disposition",
            "hubspot_owner_id",
            KEY_PROPERTY,
            "voxbridge_intent_level",
        ],
        "tickets" => &[
            "subject",
            "content",
            "hs_pipeline",
            "hs_pipeline_stage",
            "hs_ticket_priority",
            "hs_ticket_category",
            "hubspot_owner_id",
            KEY_PROPERTY,
        ],
        "tasks" => &[
            "hs_timestamp",
            "hs_task_subject",
            "hs_task_body",
            "hs_task_status",
            "hs_task_priority",
            "hs_task_type",
            "hubspot_owner_id",
            KEY_PROPERTY,
        ],
        _ => &[],
    }
}

fn required(object: &str) -> &'static [&'static str] {
    match object {
        "calls" | "tasks" => &["hs_timestamp"],
        "tickets" => &["subject", "hs_pipeline", "hs_pipeline_stage"],
        _ => &[],
    }
}

fn association_type(object: &str) -> u64 {
    match object {
        "calls" => 194,
        "tickets" => 16,
        "tasks" => 204,
        _ => 0,
    }
}

fn hs_error(status: StatusCode, category: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"status": "error", "message": message,
                    "correlationId": "aeb5f871-7f07-4993-9211-075dc63e7cbf", "category": category})),
    )
        .into_response()
}

fn authorised(headers: &HeaderMap) -> Result<(), Box<Response>> {
    if super::bearer(headers).as_deref() == Some(TOKEN) {
        Ok(())
    } else {
        Err(Box::new(hs_error(
            StatusCode::UNAUTHORIZED,
            "INVALID_AUTHENTICATION",
            "Authentication credentials not found. This API supports OAuth 2.0 authentication.",
        )))
    }
}

pub fn router(portal: Arc<Portal>) -> Router {
    Router::new()
        .route("/crm/v3/objects/{object}/search", post(search))
        .route("/crm/v3/objects/{object}", post(create))
        .route("/crm/v3/objects/{object}/{id}", get(get_contact))
        .with_state(portal)
}

fn record(id: &str, props: &Map<String, Value>, wanted: &[String]) -> Value {
    let mut p = Map::new();
    for w in wanted {
        p.insert(w.clone(), props.get(w).cloned().unwrap_or(Value::Null));
    }
    p.insert("hs_object_id".into(), json!(id));
    json!({"id": id, "properties": p, "createdAt": "2026-11-01T08:00:00.000Z",
           "updatedAt": "2026-11-20T08:00:00.000Z", "archived": false})
}

async fn search(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    Path(object): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    if let Err(r) = authorised(&headers) {
        return *r;
    }
    let groups = body["filterGroups"].as_array().cloned().unwrap_or_default();
    let mut conditions: Vec<Vec<(String, String)>> = Vec::new();
    for g in &groups {
        let mut all = Vec::new();
        for f in g["filters"].as_array().cloned().unwrap_or_default() {
            if f["operator"] != "EQ" {
                return hs_error(
                    StatusCode::BAD_REQUEST,
                    "VALIDATION_ERROR",
                    "operator not supported by this stand-in",
                );
            }
            let name = f["propertyName"].as_str().unwrap_or("").to_string();
            if !known_properties(&object).contains(&name.as_str()) {
                return hs_error(
                    StatusCode::BAD_REQUEST,
                    "VALIDATION_ERROR",
                    &format!(
                        "There was a problem with the request. Property {name} does not exist"
                    ),
                );
            }
            all.push((name, f["value"].as_str().unwrap_or("").to_string()));
        }
        conditions.push(all);
    }
    let wanted: Vec<String> = body["properties"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_else(|| vec!["createdate".into(), "lastmodifieddate".into()]);
    let limit = body["limit"].as_u64().unwrap_or(10) as usize;
    let objects = portal.objects.lock().expect("lock");
    let empty = BTreeMap::new();
    let all = objects.get(&object).unwrap_or(&empty);
    let hits: Vec<Value> = all
        .iter()
        .filter(|(_, p)| {
            conditions.is_empty()
                || conditions.iter().any(|group| {
                    group.iter().all(|(name, value)| {
                        // EQ compares case-insensitively on text properties.
                        p.get(name)
                            .and_then(Value::as_str)
                            .is_some_and(|v| v.eq_ignore_ascii_case(value))
                    })
                })
        })
        .map(|(id, p)| record(id, p, &wanted))
        .collect();
    let total = hits.len();
    Json(json!({"total": total, "results": hits.into_iter().take(limit).collect::<Vec<_>>()}))
        .into_response()
}

async fn get_contact(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    Path((object, id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = authorised(&headers) {
        return *r;
    }
    if object != "contacts" {
        return hs_error(
            StatusCode::NOT_FOUND,
            "OBJECT_NOT_FOUND",
            "Unknown object type",
        );
    }
    let wanted: Vec<String> = q
        .get("properties")
        .map(|p| p.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    let objects = portal.objects.lock().expect("lock");
    match objects.get("contacts").and_then(|c| c.get(&id)) {
        Some(p) => Json(record(&id, p, &wanted)).into_response(),
        None => hs_error(
            StatusCode::NOT_FOUND,
            "OBJECT_NOT_FOUND",
            "Object not found.  objectId are usually numeric.",
        ),
    }
}

async fn create(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    Path(object): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    if let Err(r) = authorised(&headers) {
        return *r;
    }
    if !["calls", "tickets", "tasks"].contains(&object.as_str()) {
        return hs_error(
            StatusCode::NOT_FOUND,
            "OBJECT_NOT_FOUND",
            "Unknown object type",
        );
    }
    let Some(props) = body["properties"].as_object().cloned() else {
        return hs_error(
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            "properties is required",
        );
    };
    for (k, v) in &props {
        if !known_properties(&object).contains(&k.as_str()) {
            return hs_error(
                StatusCode::BAD_REQUEST,
                "VALIDATION_ERROR",
                &format!("Property values were not valid: [{{\"isValid\":false,\"message\":\"Property \\\"{k}\\\" does not exist\",\"error\":\"PROPERTY_DOESNT_EXIST\",\"name\":\"{k}\"}}]"),
            );
        }
        if !(v.is_string() || v.is_number()) {
            return hs_error(
                StatusCode::BAD_REQUEST,
                "VALIDATION_ERROR",
                &format!("{k}: property values are strings"),
            );
        }
    }
    for r in required(&object) {
        if !props.contains_key(*r) {
            return hs_error(
                StatusCode::BAD_REQUEST,
                "VALIDATION_ERROR",
                &format!("Property {r} is required"),
            );
        }
    }
    if object == "calls"
        && props
            .get("hs_call_duration")
            .and_then(Value::as_str)
            .is_some_and(|d| d.parse::<u64>().is_err())
    {
        return hs_error(
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            "hs_call_duration must be a number of milliseconds",
        );
    }
    if object == "tickets"
        && props
            .get("hs_ticket_priority")
            .and_then(Value::as_str)
            .is_some_and(|p| !["LOW", "MEDIUM", "HIGH"].contains(&p))
    {
        return hs_error(
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            "hs_ticket_priority: invalid option",
        );
    }
    let mut links = Vec::new();
    for a in body["associations"].as_array().cloned().unwrap_or_default() {
        let to = a["to"]["id"]
            .as_str()
            .map(str::to_string)
            .or_else(|| a["to"]["id"].as_u64().map(|n| n.to_string()));
        let ty = a["types"][0]["associationTypeId"].as_u64().unwrap_or(0);
        let cat = a["types"][0]["associationCategory"].as_str().unwrap_or("");
        if cat != "HUBSPOT_DEFINED" || ty != association_type(&object) {
            return hs_error(
                StatusCode::BAD_REQUEST,
                "VALIDATION_ERROR",
                "invalid association type",
            );
        }
        let Some(to) = to else {
            return hs_error(
                StatusCode::BAD_REQUEST,
                "VALIDATION_ERROR",
                "association without target id",
            );
        };
        links.push((to, ty));
    }
    portal.creates.fetch_add(1, Ordering::SeqCst);
    let mut objects = portal.objects.lock().expect("lock");
    let all = objects.entry(object.clone()).or_default();
    let id = format!("{}", 90_000 + all.len() + 1);
    all.insert(id.clone(), props.clone());
    drop(objects);
    let mut assoc = portal.associations.lock().expect("lock");
    for (to, ty) in links {
        assoc.push((id.clone(), to, ty));
    }
    let wanted: Vec<String> = props.keys().cloned().collect();
    (StatusCode::CREATED, Json(record(&id, &props, &wanted))).into_response()
}

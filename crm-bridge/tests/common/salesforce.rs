//! A Salesforce stand-in: the REST API requests and replies the connector
//! uses, as documented (shapes and status codes copied from the pages
//! below; data made up).
//!
//! - OAuth 2.0 client credentials flow, token request and reply:
//!   https://developer.salesforce.com/docs/atlas.en-us.chatterapi.meta/chatterapi/quickstart_connecting.htm
//! - SOSL search `GET /services/data/vXX.X/search/?q=`, reply
//!   `{"searchRecords": [{"attributes": {...}, "Id": ...}]}`:
//!   https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/dome_search.htm
//!   https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_search.htm
//! - Get field values from a record, `GET /sobjects/Contact/<id>?fields=`:
//!   https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/dome_get_field_values.htm
//! - Upsert by External ID, `PATCH /sobjects/<object>/<field>/<value>`:
//!   201 + `{"id","success","errors","created":true}` when created, 200
//!   with `"created": false` when it existed (API 46.0+), 404 NOT_FOUND for
//!   a field that is not an External ID:
//!   https://developer.salesforce.com/docs/platform/api-rest/guide/dome-upsert.html
//! - Error bodies `[{"message","errorCode"}]`, 401 INVALID_SESSION_ID:
//!   https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/errorcodes.htm
//! - Task fields (TaskSubtype, CallType, CallDurationInSeconds,
//!   CallDisposition, WhoId, ActivityDate) and Case fields (Origin,
//!   SuppliedPhone, ContactId):
//!   https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_task.htm
//!   https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_case.htm

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde_json::{json, Map, Value};

pub const CLIENT_ID: &str = "3MVG9-voxbridge-test";
pub const CLIENT_SECRET: &str = "8A4BE698-test";
pub const EXTERNAL_ID_FIELD: &str = "Voxbridge_Key__c";
const VERSION: &str = "v60.0";

/// (object, external id) → (record id, fields)
pub type Records = HashMap<(String, String), (String, Map<String, Value>)>;

#[derive(Default)]
pub struct Org {
    pub tokens: Mutex<Vec<String>>,
    pub records: Mutex<Records>,
    pub upserts: AtomicUsize,
}

fn contacts() -> Vec<Value> {
    vec![
        json!({"Id": "0035g00000AbCdEAA1", "Name": "Li Wei", "Phone": "+86 138 0013 8000",
               "MobilePhone": null, "Email": "li.wei@example.cn", "Customer_Tier__c": "Platinum"}),
        json!({"Id": "0035g00000AbCdFAA1", "Name": "Wang Lei", "Phone": "+852 1380 0138 0009",
               "MobilePhone": null, "Email": "wang.lei@example.cn", "Customer_Tier__c": "Bronze"}),
        json!({"Id": "0035g00000AbCdGAA1", "Name": "Alice Johnson", "Phone": null,
               "MobilePhone": "(555) 123-4567", "Email": "alice@example.com", "Customer_Tier__c": null}),
    ]
}

const TASK_FIELDS: &[&str] = &[
    "Subject",
    "Description",
    "ActivityDate",
    "Status",
    "Priority",
    "TaskSubtype",
    "CallType",
    "CallDurationInSeconds",
    "CallDisposition",
    "CallObject",
    "WhoId",
    "WhatId",
    "OwnerId",
];
const CASE_FIELDS: &[&str] = &[
    "Subject",
    "Description",
    "Priority",
    "Origin",
    "Status",
    "ContactId",
    "AccountId",
    "SuppliedPhone",
    "SuppliedEmail",
    "SuppliedName",
    "Type",
    "Reason",
];

fn sf_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!([{"message": message, "errorCode": code}])),
    )
        .into_response()
}

fn authorised(org: &Org, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let token = super::bearer(headers).unwrap_or_default();
    if org.tokens.lock().expect("lock").contains(&token) {
        Ok(())
    } else {
        Err(Box::new(sf_error(
            StatusCode::UNAUTHORIZED,
            "INVALID_SESSION_ID",
            "Session expired or invalid",
        )))
    }
}

pub fn router(org: Arc<Org>) -> Router {
    Router::new()
        .route("/services/oauth2/token", post(token))
        .route(&format!("/services/data/{VERSION}/search/"), get(search))
        .route(
            &format!("/services/data/{VERSION}/sobjects/Contact/{{id}}"),
            get(contact),
        )
        .route(
            &format!("/services/data/{VERSION}/sobjects/{{object}}/{{field}}/{{value}}"),
            patch(upsert),
        )
        .with_state(org)
}

async fn token(State(org): State<Arc<Org>>, body: String) -> Response {
    let form: HashMap<String, String> = body
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| {
            (
                k.to_string(),
                percent_encoding::percent_decode_str(v)
                    .decode_utf8_lossy()
                    .to_string(),
            )
        })
        .collect();
    if form.get("grant_type").map(String::as_str) != Some("client_credentials")
        || form.get("client_id").map(String::as_str) != Some(CLIENT_ID)
        || form.get("client_secret").map(String::as_str) != Some(CLIENT_SECRET)
    {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_client", "error_description": "invalid client credentials"})),
        )
            .into_response();
    }
    let mut tokens = org.tokens.lock().expect("lock");
    let token = format!("00DS7000000oxzo!AR8AQ{}", tokens.len() + 1);
    tokens.push(token.clone());
    // No expires_in: Salesforce does not send one.
    Json(json!({
        "access_token": token,
        "signature": "nUFHwtfIGLKDTHcLWmDBG8frv0t+HQGl/iCZFIQUarE=",
        "token_format": "opaque",
        "instance_url": "https://instance_name.my.salesforce.com",
        "id": "https://login.salesforce.com/id/00Dd000000XXXXXXX/005d000000XXXXX",
        "token_type": "Bearer",
        "issued_at": "1795253400000"
    }))
    .into_response()
}

/// Reads `FIND {term} IN PHONE FIELDS RETURNING Contact(f1, f2) LIMIT n`.
fn parse_sosl(q: &str) -> Option<(String, Vec<String>)> {
    let rest = q.strip_prefix("FIND {")?;
    let mut term = String::new();
    let mut chars = rest.chars();
    loop {
        match chars.next()? {
            '\\' => term.push(chars.next()?),
            '}' => break,
            c => term.push(c),
        }
    }
    let rest: String = chars.collect();
    let rest = rest
        .trim_start()
        .strip_prefix("IN PHONE FIELDS RETURNING Contact(")?;
    let (fields, _) = rest.split_once(')')?;
    Some((
        term,
        fields.split(',').map(|f| f.trim().to_string()).collect(),
    ))
}

fn project(record: &Value, fields: &[String]) -> Value {
    let id = record["Id"].as_str().unwrap_or("");
    let mut out = Map::new();
    out.insert(
        "attributes".into(),
        json!({"type": "Contact", "url": format!("/services/data/{VERSION}/sobjects/Contact/{id}")}),
    );
    for f in fields {
        out.insert(f.clone(), record.get(f).cloned().unwrap_or(Value::Null));
    }
    Value::Object(out)
}

async fn search(
    State(org): State<Arc<Org>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = authorised(&org, &headers) {
        return *r;
    }
    let Some((term, fields)) = q.get("q").and_then(|q| parse_sosl(q)) else {
        return sf_error(
            StatusCode::BAD_REQUEST,
            "MALFORMED_SEARCH",
            "unexpected token",
        );
    };
    let wanted = super::digits(&term);
    let hits: Vec<Value> = contacts()
        .iter()
        .filter(|c| {
            ["Phone", "MobilePhone"].iter().any(|f| {
                c[f].as_str()
                    .is_some_and(|p| !wanted.is_empty() && super::digits(p).contains(&wanted))
            })
        })
        .map(|c| project(c, &fields))
        .collect();
    Json(json!({"searchRecords": hits})).into_response()
}

async fn contact(
    State(org): State<Arc<Org>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = authorised(&org, &headers) {
        return *r;
    }
    let fields: Vec<String> = q
        .get("fields")
        .map(|f| f.split(',').map(str::to_string).collect())
        .unwrap_or_else(|| vec!["Id".into(), "Name".into()]);
    match contacts().iter().find(|c| c["Id"] == id.as_str()) {
        Some(c) => Json(project(c, &fields)).into_response(),
        None => sf_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "The requested resource does not exist",
        ),
    }
}

async fn upsert(
    State(org): State<Arc<Org>>,
    headers: HeaderMap,
    Path((object, field, value)): Path<(String, String, String)>,
    Json(body): Json<Value>,
) -> Response {
    if let Err(r) = authorised(&org, &headers) {
        return *r;
    }
    org.upserts.fetch_add(1, Ordering::SeqCst);
    let allowed = match object.as_str() {
        "Task" => TASK_FIELDS,
        "Case" => CASE_FIELDS,
        _ => {
            return sf_error(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                "The requested resource does not exist",
            )
        }
    };
    if field != EXTERNAL_ID_FIELD {
        return sf_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "The requested resource does not exist",
        );
    }
    let Value::Object(fields) = body else {
        return sf_error(
            StatusCode::BAD_REQUEST,
            "JSON_PARSER_ERROR",
            "expected an object",
        );
    };
    for k in fields.keys() {
        if !allowed.contains(&k.as_str()) {
            return sf_error(
                StatusCode::BAD_REQUEST,
                "INVALID_FIELD",
                &format!("No such column '{k}' on sobject of type {object}"),
            );
        }
    }
    if object == "Task"
        && fields
            .get("CallDurationInSeconds")
            .is_some_and(|v| !v.is_u64())
    {
        return sf_error(
            StatusCode::BAD_REQUEST,
            "JSON_PARSER_ERROR",
            "Cannot deserialize instance of int",
        );
    }
    let mut records = org.records.lock().expect("lock");
    let key = (object.clone(), value);
    let prefix = if object == "Task" { "00T" } else { "500" };
    let next = records.len() + 1;
    let (status, created) = match records.get_mut(&key) {
        Some((_, existing)) => {
            existing.extend(fields);
            (StatusCode::OK, false)
        }
        None => {
            records.insert(key.clone(), (format!("{prefix}5g00000Zz{next:04}"), fields));
            (StatusCode::CREATED, true)
        }
    };
    let id = records[&key].0.clone();
    (
        status,
        Json(json!({"id": id, "success": true, "errors": [], "created": created})),
    )
        .into_response()
}

//! An Odoo 19 stand-in for the External JSON-2 API, as documented
//! (request and reply shapes and status codes from the pages below; data
//! made up).
//!
//! - `POST /json/2/<model>/<method>`, `Authorization: bearer <API key>`,
//!   optional `X-Odoo-Database`, keyword parameters (and `ids`, `context`)
//!   in the JSON body; 200 with the method's return value as the body;
//!   4xx/5xx with `{"name","message","arguments","context","debug"}`
//!   (401 "Invalid apikey"):
//!   https://github.com/odoo/documentation/blob/19.0/content/developer/reference/external_api.rst
//!   (and https://www.odoo.com/documentation/19.0/developer/reference/external_api.html)
//! - An unexpected keyword argument is a 422 (the JSON-2 pull request's
//!   example, https://github.com/odoo/odoo/pull/197801).
//! - `search_read(domain, fields, offset, limit, order)` with domains in
//!   prefix notation (`"|"`, `"&"`, `"!"`), many2one values read as
//!   `[id, display_name]`, `create(vals_list)` returning the new ids, and
//!   `message_post(body, message_type, subtype_xmlid)` returning the
//!   message id: the ORM reference,
//!   https://www.odoo.com/documentation/19.0/developer/reference/backend/orm.html
//!   and mail.thread's message_post.
//! - Models and fields: `res.partner.phone_sanitized` (E.164 phone from
//!   `phone_validation`), `sale.order` (`name`, `state` ∈ draft/sent/sale/
//!   cancel, `date_order`, `amount_total`, `currency_id`), `sale.order.line`
//!   (`product_uom_qty`), `stock.quant` (`quantity`, `reserved_quantity`,
//!   `location_id.usage`), `helpdesk.ticket` (`name`, `description`,
//!   `priority` "0"–"3", `partner_id`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Map, Value};

pub const API_KEY: &str = "6578616d706c65206a736f6e20617069206b6579";
pub const DATABASE: &str = "mycompany";

pub type Tables = BTreeMap<String, BTreeMap<i64, Map<String, Value>>>;

pub struct Db {
    /// model → id → record (many2one fields stored as ids)
    pub tables: Mutex<Tables>,
    pub creates: AtomicUsize,
}

fn rec(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

impl Db {
    pub fn seeded() -> Db {
        let mut t: BTreeMap<String, BTreeMap<i64, Map<String, Value>>> = BTreeMap::new();
        t.insert(
            "res.partner".into(),
            BTreeMap::from([
                (7, rec(json!({"name": "Li Wei", "email": "li.wei@example.cn", "phone": "+86 138 0013 8000",
                               "phone_sanitized": "+8613800138000", "lang": "zh_CN", "x_tier": "A"}))),
                (8, rec(json!({"name": "Alice Johnson", "email": "alice@example.com", "phone": "(555) 123-4567",
                               "phone_sanitized": "+15551234567", "lang": "en_US", "x_tier": false}))),
            ]),
        );
        t.insert(
            "res.currency".into(),
            BTreeMap::from([
                (7, rec(json!({"name": "CNY"}))),
                (2, rec(json!({"name": "USD"}))),
            ]),
        );
        t.insert(
            "product.product".into(),
            BTreeMap::from([
                (
                    31,
                    rec(json!({"name": "Blue Electric Kettle 1.7L", "default_code": "KET-BLU-17"})),
                ),
                (
                    32,
                    rec(json!({"name": "Red Electric Kettle 1.7L", "default_code": "KET-RED-17"})),
                ),
                (
                    33,
                    rec(json!({"name": "Stainless Steel Toaster", "default_code": "TOA-SS-2"})),
                ),
            ]),
        );
        t.insert(
            "stock.location".into(),
            BTreeMap::from([
                (8, rec(json!({"name": "WH/Stock", "usage": "internal"}))),
                (
                    5,
                    rec(json!({"name": "Partners/Customers", "usage": "customer"})),
                ),
            ]),
        );
        t.insert(
            "stock.quant".into(),
            BTreeMap::from([
                (1, rec(json!({"product_id": 31, "location_id": 8, "quantity": 30.0, "reserved_quantity": 4.0}))),
                (2, rec(json!({"product_id": 31, "location_id": 8, "quantity": 12.0, "reserved_quantity": 0.0}))),
                (3, rec(json!({"product_id": 31, "location_id": 5, "quantity": 99.0, "reserved_quantity": 0.0}))),
                (4, rec(json!({"product_id": 33, "location_id": 8, "quantity": 17.0, "reserved_quantity": 2.0}))),
            ]),
        );
        t.insert(
            "sale.order".into(),
            BTreeMap::from([
                (41, rec(json!({"name": "S00041", "partner_id": 7, "state": "sale", "date_order": "2026-11-18 10:00:00",
                                "amount_total": 1299.0, "currency_id": 7}))),
                (40, rec(json!({"name": "S00040", "partner_id": 7, "state": "cancel", "date_order": "2026-11-02 09:30:00",
                                "amount_total": 399.0, "currency_id": 7}))),
            ]),
        );
        t.insert(
            "sale.order.line".into(),
            BTreeMap::from([
                (1, rec(json!({"order_id": 41, "product_id": 31, "name": "[KET-BLU-17] Blue Electric Kettle 1.7L", "product_uom_qty": 2.0}))),
                (2, rec(json!({"order_id": 40, "product_id": 33, "name": "[TOA-SS-2] Stainless Steel Toaster", "product_uom_qty": 1.0}))),
            ]),
        );
        t.insert("helpdesk.ticket".into(), BTreeMap::new());
        t.insert("mail.message".into(), BTreeMap::new());
        Db {
            tables: Mutex::new(t),
            creates: AtomicUsize::new(0),
        }
    }

    pub fn count(&self, model: &str) -> usize {
        self.tables
            .lock()
            .expect("lock")
            .get(model)
            .map(BTreeMap::len)
            .unwrap_or(0)
    }
}

/// Which field of which model is a many2one, and to what.
fn relation(model: &str, field: &str) -> Option<&'static str> {
    Some(match (model, field) {
        ("sale.order", "partner_id") | ("helpdesk.ticket", "partner_id") => "res.partner",
        ("sale.order", "currency_id") => "res.currency",
        ("sale.order.line", "order_id") => "sale.order",
        ("sale.order.line", "product_id") | ("stock.quant", "product_id") => "product.product",
        ("stock.quant", "location_id") => "stock.location",
        _ => return None,
    })
}

fn odoo_error(status: StatusCode, name: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"name": name, "message": message, "arguments": [message], "context": {},
                    "debug": format!("Traceback (most recent call last):\n  ...\n{name}: {message}\n")})),
    )
        .into_response()
}

pub fn router(db: Arc<Db>) -> Router {
    Router::new()
        .route("/json/2/{model}/{method}", post(call))
        .with_state(db)
}

/// The value of `path` (`location_id.usage`) on a record.
fn field_value(
    tables: &Tables,
    model: &str,
    record: &Map<String, Value>,
    id: i64,
    path: &str,
) -> Value {
    let (head, rest) = match path.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (path, None),
    };
    if head == "id" {
        return json!(id);
    }
    let v = record.get(head).cloned().unwrap_or(Value::Bool(false));
    match (rest, relation(model, head), v.as_i64()) {
        (Some(rest), Some(target), Some(fk)) => match tables.get(target).and_then(|t| t.get(&fk)) {
            Some(r) => field_value(tables, target, r, fk, rest),
            None => Value::Bool(false),
        },
        _ => v,
    }
}

fn condition(
    tables: &Tables,
    model: &str,
    record: &Map<String, Value>,
    id: i64,
    c: &[Value],
) -> Result<bool, String> {
    let [field, op, value] = c else {
        return Err(format!("invalid leaf {c:?}"));
    };
    let field = field.as_str().ok_or("field name must be a string")?;
    let actual = field_value(tables, model, record, id, field);
    let text = |v: &Value| match v {
        Value::String(s) => s.to_lowercase(),
        other => other.to_string(),
    };
    Ok(match op.as_str().ok_or("operator must be a string")? {
        "=" => actual == *value || (actual.as_f64().is_some() && actual.as_f64() == value.as_f64()),
        "!=" => actual != *value,
        "ilike" => text(&actual).contains(&text(value).replace('%', "")),
        "=ilike" => text(&actual) == text(value),
        "in" => value.as_array().is_some_and(|a| a.contains(&actual)),
        other => return Err(format!("operator {other} not supported by this stand-in")),
    })
}

/// Evaluate a prefix-notation domain; a list of leaves is an implicit AND.
fn matches(
    tables: &Tables,
    model: &str,
    record: &Map<String, Value>,
    id: i64,
    domain: &[Value],
) -> Result<bool, String> {
    fn eval(
        tables: &Tables,
        model: &str,
        record: &Map<String, Value>,
        id: i64,
        items: &[Value],
        pos: &mut usize,
    ) -> Result<bool, String> {
        let item = items.get(*pos).ok_or("incomplete domain")?;
        *pos += 1;
        match item.as_str() {
            Some("|") => {
                let a = eval(tables, model, record, id, items, pos)?;
                let b = eval(tables, model, record, id, items, pos)?;
                Ok(a || b)
            }
            Some("&") => {
                let a = eval(tables, model, record, id, items, pos)?;
                let b = eval(tables, model, record, id, items, pos)?;
                Ok(a && b)
            }
            Some("!") => Ok(!eval(tables, model, record, id, items, pos)?),
            _ => condition(
                tables,
                model,
                record,
                id,
                item.as_array().ok_or("domain leaf must be a list")?,
            ),
        }
    }
    let mut pos = 0;
    let mut all = true;
    while pos < domain.len() {
        all &= eval(tables, model, record, id, domain, &mut pos)?;
    }
    Ok(all)
}

fn read(
    tables: &Tables,
    model: &str,
    id: i64,
    record: &Map<String, Value>,
    fields: &[String],
) -> Value {
    let mut out = Map::new();
    out.insert("id".into(), json!(id));
    for f in fields {
        if f == "id" {
            continue;
        }
        let v = record.get(f).cloned().unwrap_or(Value::Bool(false));
        let v = match (relation(model, f), v.as_i64()) {
            (Some(target), Some(fk)) => {
                let name = tables
                    .get(target)
                    .and_then(|t| t.get(&fk))
                    .and_then(|r| r.get("name"))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                json!([fk, name])
            }
            _ => v,
        };
        out.insert(f.clone(), v);
    }
    Value::Object(out)
}

fn check_kwargs(body: &Map<String, Value>, allowed: &[&str]) -> Result<(), Box<Response>> {
    for k in body.keys() {
        if !allowed.contains(&k.as_str()) && k != "context" {
            return Err(Box::new(odoo_error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "builtins.TypeError",
                &format!("got an unexpected keyword argument '{k}'"),
            )));
        }
    }
    Ok(())
}

async fn call(
    State(db): State<Arc<Db>>,
    headers: HeaderMap,
    Path((model, method)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> Response {
    if super::bearer(&headers).as_deref() != Some(API_KEY) {
        return odoo_error(
            StatusCode::UNAUTHORIZED,
            "werkzeug.exceptions.Unauthorized",
            "Invalid apikey",
        );
    }
    if headers.get("x-odoo-database").and_then(|v| v.to_str().ok()) != Some(DATABASE) {
        return odoo_error(
            StatusCode::NOT_FOUND,
            "werkzeug.exceptions.NotFound",
            "database not found",
        );
    }
    let Some(body) = body.as_object().cloned() else {
        return odoo_error(
            StatusCode::BAD_REQUEST,
            "werkzeug.exceptions.BadRequest",
            "body must be an object",
        );
    };
    let mut tables = db.tables.lock().expect("lock");
    if !tables.contains_key(&model) {
        return odoo_error(
            StatusCode::NOT_FOUND,
            "werkzeug.exceptions.NotFound",
            &format!("model {model} not found"),
        );
    }
    match method.as_str() {
        "search_read" => {
            if let Err(r) = check_kwargs(&body, &["domain", "fields", "offset", "limit", "order"]) {
                return *r;
            }
            let domain = body
                .get("domain")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let fields: Vec<String> = body
                .get("fields")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|f| f.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            let limit = body
                .get("limit")
                .and_then(Value::as_u64)
                .unwrap_or(u64::MAX) as usize;
            let mut hits: Vec<(i64, Map<String, Value>)> = Vec::new();
            for (id, r) in &tables[&model] {
                match matches(&tables, &model, r, *id, &domain) {
                    Ok(true) => hits.push((*id, r.clone())),
                    Ok(false) => {}
                    Err(e) => {
                        return odoo_error(
                            StatusCode::UNPROCESSABLE_ENTITY,
                            "builtins.ValueError",
                            &e,
                        )
                    }
                }
            }
            if let Some(order) = body.get("order").and_then(Value::as_str) {
                if order.starts_with("date_order desc") {
                    hits.sort_by(|a, b| {
                        b.1.get("date_order")
                            .map(Value::to_string)
                            .cmp(&a.1.get("date_order").map(Value::to_string))
                    });
                }
            }
            let rows: Vec<Value> = hits
                .iter()
                .take(limit)
                .map(|(id, r)| read(&tables, &model, *id, r, &fields))
                .collect();
            Json(Value::Array(rows)).into_response()
        }
        "create" => {
            if let Err(r) = check_kwargs(&body, &["vals_list"]) {
                return *r;
            }
            let Some(vals_list) = body.get("vals_list").and_then(Value::as_array).cloned() else {
                return odoo_error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "builtins.TypeError",
                    "missing vals_list",
                );
            };
            let mut ids = Vec::new();
            for vals in vals_list {
                let Some(vals) = vals.as_object().cloned() else {
                    return odoo_error(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "builtins.TypeError",
                        "vals must be objects",
                    );
                };
                if model == "helpdesk.ticket" {
                    if vals
                        .get("name")
                        .and_then(Value::as_str)
                        .is_none_or(str::is_empty)
                    {
                        return odoo_error(
                            StatusCode::UNPROCESSABLE_ENTITY,
                            "odoo.exceptions.ValidationError",
                            "Subject is required",
                        );
                    }
                    if vals
                        .get("priority")
                        .and_then(Value::as_str)
                        .is_some_and(|p| !["0", "1", "2", "3"].contains(&p))
                    {
                        return odoo_error(
                            StatusCode::UNPROCESSABLE_ENTITY,
                            "builtins.ValueError",
                            "Wrong value for helpdesk.ticket.priority",
                        );
                    }
                }
                db.creates.fetch_add(1, Ordering::SeqCst);
                let table = tables.get_mut(&model).expect("model exists");
                let id = table.keys().next_back().copied().unwrap_or(0) + 1;
                table.insert(id, vals);
                ids.push(id);
            }
            Json(json!(ids)).into_response()
        }
        "message_post" => {
            if let Err(r) = check_kwargs(
                &body,
                &[
                    "ids",
                    "body",
                    "message_type",
                    "subtype_xmlid",
                    "subject",
                    "partner_ids",
                ],
            ) {
                return *r;
            }
            let ids: Vec<i64> = body
                .get("ids")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_i64).collect())
                .unwrap_or_default();
            let [res_id] = ids.as_slice() else {
                return odoo_error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "builtins.ValueError",
                    "Expected singleton",
                );
            };
            if !tables[&model].contains_key(res_id) {
                return odoo_error(
                    StatusCode::NOT_FOUND,
                    "odoo.exceptions.MissingError",
                    "Record does not exist or has been deleted.",
                );
            }
            db.creates.fetch_add(1, Ordering::SeqCst);
            let messages = tables.get_mut("mail.message").expect("mail.message");
            let id = messages.keys().next_back().copied().unwrap_or(100) + 1;
            messages.insert(
                id,
                rec(json!({"model": model, "res_id": res_id, "body": body.get("body").cloned().unwrap_or(json!("")),
                           "message_type": body.get("message_type").cloned().unwrap_or(json!("notification"))})),
            );
            Json(json!(id)).into_response()
        }
        other => odoo_error(
            StatusCode::NOT_FOUND,
            "werkzeug.exceptions.NotFound",
            &format!("method {other} not available in this stand-in"),
        ),
    }
}

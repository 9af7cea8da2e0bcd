//! The generic REST connector: a site describes its CRM's requests and
//! replies in YAML (request templates per operation, authentication, JSON
//! paths for the fields, value maps) and plugs it in without Rust.
//!
//! Writes are idempotent in one of three ways, whichever the CRM offers: an
//! idempotency header carrying the outbox key, a status that means "already
//! exists" (`conflict`, 409 by default), or a `dedup` lookup by key before
//! the write.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::{Method, RequestBuilder};
use serde::Deserialize;
use serde_json::Value;

use crate::auth::{Auth, AuthConfig};
use crate::connector::{Connector, Operation};
use crate::context;
use crate::error::CrmError;
use crate::fuzzy;
use crate::http::{HttpClient, Reply, DEFAULT_MAX_BODY};
use crate::mapping::{FieldSpec, JsonPath, ValueMaps};
use crate::model::{
    CallLog, Customer, NewTask, NewTicket, Order, OrderLine, ProductQuery, StockLevel, WriteRef,
};
use crate::phone::E164;
use crate::template::{BodyTemplate, Escape, Template};

fn default_auth() -> AuthConfig {
    AuthConfig::None
}

fn default_max_body() -> usize {
    DEFAULT_MAX_BODY
}

/// The YAML of a `kind: rest` system.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestConfig {
    /// `https://crm.example.com/api/v1`; operation paths are appended.
    pub base_url: String,
    #[serde(default = "default_auth")]
    pub auth: AuthConfig,
    /// Headers sent with every request (not for secrets: use `auth`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Header that carries the outbox's idempotency key on writes.
    #[serde(default)]
    pub idempotency_header: Option<String>,
    #[serde(default)]
    pub value_maps: ValueMaps,
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    #[serde(default)]
    pub operations: BTreeMap<Operation, OpConfig>,
}

/// One operation's request and reply mapping.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpConfig {
    /// Default GET for reads, POST for writes.
    #[serde(default)]
    pub method: Option<String>,
    /// Appended to `base_url`; placeholders are percent-encoded.
    pub path: String,
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// JSON body template (any YAML value; strings are templates).
    #[serde(default)]
    pub body: Option<Value>,
    /// Where the record (or the list of records) is in the reply.
    #[serde(default)]
    pub result: Option<String>,
    /// Statuses that mean "none" for reads (default 404).
    #[serde(default)]
    pub not_found: Option<Vec<u16>>,
    /// Field name → JSON path (relative to each record), or
    /// `{ path, map }` to pass it through a value map.
    #[serde(default)]
    pub fields: BTreeMap<String, FieldSpec>,
    /// Writes: where the created record's id is in the reply.
    #[serde(default)]
    pub id: Option<String>,
    /// Writes: statuses meaning "already exists" (default 409).
    #[serde(default)]
    pub conflict: Option<Vec<u16>>,
    /// Writes: a lookup by `{{key}}` made first; a record found means the
    /// write already happened.
    #[serde(default)]
    pub dedup: Option<Box<OpConfig>>,
}

/// A checked, parsed operation.
#[derive(Debug, Clone)]
struct Op {
    method: Method,
    path: Template,
    query: Vec<(String, Template)>,
    headers: Vec<(String, Template)>,
    body: Option<BodyTemplate>,
    result: JsonPath,
    not_found: Vec<u16>,
    fields: BTreeMap<String, FieldSpec>,
    id: Option<JsonPath>,
    conflict: Vec<u16>,
    dedup: Option<Box<Op>>,
}

const CUSTOMER_FIELDS: &[&str] = &["id", "name", "phone", "email", "tier", "language"];
const ORDER_FIELDS: &[&str] = &[
    "id",
    "customer_id",
    "status",
    "placed_at",
    "total",
    "currency",
    "lines",
    "line_sku",
    "line_name",
    "line_quantity",
];
const STOCK_FIELDS: &[&str] = &["sku", "name", "quantity", "forecast"];

impl Op {
    fn parse(op: Operation, c: &OpConfig, maps: &ValueMaps, roots: &[&str]) -> Result<Op, String> {
        let method_text = c
            .method
            .clone()
            .unwrap_or_else(|| if op.is_read() { "GET" } else { "POST" }.into());
        let method = Method::from_bytes(method_text.to_ascii_uppercase().as_bytes())
            .map_err(|_| format!("`{method_text}` is not an HTTP method"))?;
        let path = Template::parse(&c.path)?;
        path.check(roots, maps)?;
        let parse_map = |m: &BTreeMap<String, String>| -> Result<Vec<(String, Template)>, String> {
            m.iter()
                .map(|(k, v)| {
                    let t = Template::parse(v)?;
                    t.check(roots, maps)?;
                    Ok((k.clone(), t))
                })
                .collect()
        };
        let body = match &c.body {
            Some(v) => {
                let b = BodyTemplate::from_value(v)?;
                b.check(roots, maps)?;
                Some(b)
            }
            None => None,
        };
        let result = JsonPath::parse(c.result.as_deref().unwrap_or("$"))?;
        for (name, spec) in &c.fields {
            if let Some(m) = &spec.map {
                if !maps.contains_key(m) {
                    return Err(format!("field `{name}`: no value map named `{m}`"));
                }
            }
        }
        let required: &[&str] = match op {
            Operation::FindCustomer | Operation::GetCustomer => &["id"],
            Operation::ListOrders | Operation::OrderStatus => &["id"],
            Operation::Stock => &["sku"],
            _ => &[],
        };
        for r in required {
            if !c.fields.contains_key(*r) {
                return Err(format!("`fields` must map `{r}`"));
            }
        }
        let known: &[&str] = match op {
            Operation::ListOrders | Operation::OrderStatus => ORDER_FIELDS,
            Operation::Stock => STOCK_FIELDS,
            _ => &[],
        };
        if !known.is_empty() {
            if let Some(bad) = c.fields.keys().find(|k| !known.contains(&k.as_str())) {
                return Err(format!(
                    "unknown field `{bad}` (fields here: {})",
                    known.join(", ")
                ));
            }
        }
        let dedup = match &c.dedup {
            Some(d) => {
                let mut inner = Op::parse(Operation::GetCustomer, &with_id_field(d), maps, roots)?;
                inner.method = Method::from_bytes(
                    d.method
                        .as_deref()
                        .unwrap_or("GET")
                        .to_ascii_uppercase()
                        .as_bytes(),
                )
                .map_err(|_| "dedup: bad HTTP method".to_string())?;
                Some(Box::new(inner))
            }
            None => None,
        };
        Ok(Op {
            method,
            path,
            query: parse_map(&c.query)?,
            headers: parse_map(&c.headers)?,
            body,
            result,
            not_found: c.not_found.clone().unwrap_or_else(|| vec![404]),
            fields: c.fields.clone(),
            id: c.id.as_deref().map(JsonPath::parse).transpose()?,
            conflict: c.conflict.clone().unwrap_or_else(|| vec![409]),
            dedup,
        })
    }
}

/// A dedup lookup needs only `id`; default it to the record's `$.id`.
fn with_id_field(d: &OpConfig) -> OpConfig {
    let mut d = d.clone();
    if !d.fields.contains_key("id") {
        let path = d.id.clone().unwrap_or_else(|| "$.id".into());
        if let Ok(p) = JsonPath::parse(&path) {
            d.fields
                .insert("id".into(), FieldSpec { path: p, map: None });
        }
    }
    d
}

/// The generic REST connector.
pub struct RestConnector {
    system: String,
    base_url: String,
    http: HttpClient,
    auth: Auth,
    headers: Vec<(String, String)>,
    idempotency_header: Option<String>,
    maps: ValueMaps,
    ops: BTreeMap<Operation, Op>,
}

impl RestConnector {
    /// Check the configuration and read the credentials.
    pub fn new(
        system: &str,
        config: &RestConfig,
        timeout: Duration,
    ) -> Result<RestConnector, CrmError> {
        let invalid = |message: String| CrmError::Invalid {
            system: system.to_string(),
            message,
        };
        reqwest::Url::parse(&config.base_url)
            .map_err(|e| invalid(format!("base_url `{}`: {e}", config.base_url)))?;
        let http = HttpClient::new(system, &config.base_url, timeout)?
            .with_max_body(config.max_body_bytes);
        let auth = Auth::from_config(system, &config.auth, &http)?;
        let mut ops = BTreeMap::new();
        for (op, c) in &config.operations {
            let parsed = Op::parse(*op, c, &config.value_maps, context::roots(*op))
                .map_err(|e| invalid(format!("operations.{op}: {e}")))?;
            ops.insert(*op, parsed);
        }
        Ok(RestConnector {
            system: system.to_string(),
            base_url: config.base_url.trim_end_matches('/').to_string(),
            http,
            auth,
            headers: config.headers.clone().into_iter().collect(),
            idempotency_header: config.idempotency_header.clone(),
            maps: config.value_maps.clone(),
            ops,
        })
    }

    fn op(&self, op: Operation) -> Result<&Op, CrmError> {
        self.ops.get(&op).ok_or_else(|| self.unsupported(op))
    }

    fn build(&self, op: &Op, ctx: &Value, key: Option<&str>) -> RequestBuilder {
        let path = op.path.render(ctx, &self.maps, Escape::PathSegment);
        let url = if path.starts_with("http://") || path.starts_with("https://") {
            path
        } else {
            format!("{}{path}", self.base_url)
        };
        let mut req = self.http.request(op.method.clone(), &url);
        let query: Vec<(String, String)> = op
            .query
            .iter()
            .map(|(k, t)| (k.clone(), t.render(ctx, &self.maps, Escape::None)))
            .filter(|(_, v)| !v.is_empty())
            .collect();
        if !query.is_empty() {
            req = req.query(&query);
        }
        req = req.header("Accept", "application/json");
        for (k, v) in &self.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        for (k, t) in &op.headers {
            req = req.header(k.as_str(), t.render(ctx, &self.maps, Escape::None));
        }
        if let (Some(h), Some(key)) = (&self.idempotency_header, key) {
            req = req.header(h.as_str(), key);
        }
        if let Some(body) = &op.body {
            req = req.json(&body.render(ctx, &self.maps));
        }
        req
    }

    /// Send with credentials; an OAuth2 token the API refuses is replaced
    /// once.
    async fn send(
        &self,
        op: &Op,
        ctx: &Value,
        key: Option<&str>,
        pass: &[u16],
    ) -> Result<Reply, CrmError> {
        let first = self
            .http
            .send(self.auth.apply(self.build(op, ctx, key)).await?, pass)
            .await;
        match first {
            Err(CrmError::Auth { .. }) if self.auth.can_refresh() => {
                self.auth.invalidate().await;
                self.http
                    .send(self.auth.apply(self.build(op, ctx, key)).await?, pass)
                    .await
            }
            other => other,
        }
    }

    /// Records at the op's `result` path: an array's items, or one object.
    async fn read_records(&self, op: Operation, ctx: &Value) -> Result<Vec<Value>, CrmError> {
        let spec = self.op(op)?;
        let reply = self.send(spec, ctx, None, &spec.not_found).await?;
        if spec.not_found.contains(&reply.status) {
            return Ok(Vec::new());
        }
        Ok(match spec.result.get(&reply.body) {
            Some(Value::Array(items)) => items.clone(),
            Some(v @ Value::Object(_)) => vec![v.clone()],
            Some(other) => {
                return Err(CrmError::Protocol {
                    system: self.system.clone(),
                    message: format!(
                        "{op}: expected a record or a list at `{}`, got {}",
                        spec.result,
                        kind_of(other)
                    ),
                })
            }
            None => Vec::new(),
        })
    }

    fn customer(&self, op: Operation, v: &Value) -> Result<Customer, CrmError> {
        let spec = self.op(op)?;
        let text = |name: &str| spec.fields.get(name).and_then(|f| f.text(v, &self.maps));
        let id = text("id").ok_or_else(|| self.missing(op, "id", spec))?;
        Ok(Customer {
            id,
            system: self.system.clone(),
            name: text("name").unwrap_or_default(),
            phone: text("phone"),
            email: text("email"),
            tier: text("tier"),
            language: text("language"),
            fields: spec
                .fields
                .iter()
                .filter(|(k, _)| !CUSTOMER_FIELDS.contains(&k.as_str()))
                .filter_map(|(k, f)| f.text(v, &self.maps).map(|t| (k.clone(), t)))
                .collect(),
        })
    }

    fn order(&self, op: Operation, v: &Value) -> Result<Order, CrmError> {
        let spec = self.op(op)?;
        let f = |name: &str| spec.fields.get(name);
        let text = |name: &str| f(name).and_then(|s| s.text(v, &self.maps));
        let id = text("id").ok_or_else(|| self.missing(op, "id", spec))?;
        let lines = match f("lines").and_then(|s| s.path.get(v)) {
            Some(Value::Array(items)) => items
                .iter()
                .map(|line| OrderLine {
                    sku: f("line_sku").and_then(|s| s.text(line, &self.maps)),
                    name: f("line_name")
                        .and_then(|s| s.text(line, &self.maps))
                        .unwrap_or_default(),
                    quantity: f("line_quantity")
                        .and_then(|s| s.number(line))
                        .unwrap_or(1.0),
                })
                .collect(),
            _ => Vec::new(),
        };
        Ok(Order {
            id,
            customer_id: text("customer_id"),
            status: text("status").unwrap_or_default(),
            placed_at: text("placed_at"),
            total: text("total"),
            currency: text("currency"),
            lines,
            fields: BTreeMap::new(),
        })
    }

    fn missing(&self, op: Operation, field: &str, spec: &Op) -> CrmError {
        CrmError::Protocol {
            system: self.system.clone(),
            message: format!(
                "{op}: record has no `{field}` at `{}`",
                spec.fields
                    .get(field)
                    .map(|f| f.path.to_string())
                    .unwrap_or_default()
            ),
        }
    }

    async fn write(&self, op: Operation, ctx: Value, key: &str) -> Result<WriteRef, CrmError> {
        let spec = self.op(op)?;
        if let Some(dedup) = &spec.dedup {
            let reply = self.send(dedup, &ctx, None, &dedup.not_found).await?;
            if !dedup.not_found.contains(&reply.status) {
                let found = match dedup.result.get(&reply.body) {
                    Some(Value::Array(items)) => items.first().cloned(),
                    Some(v @ Value::Object(_)) => Some(v.clone()),
                    _ => None,
                };
                if let Some(record) = found {
                    let id = dedup
                        .fields
                        .get("id")
                        .and_then(|f| f.text(&record, &self.maps))
                        .unwrap_or_else(|| key.to_string());
                    return Ok(WriteRef {
                        system: self.system.clone(),
                        id,
                        existing: true,
                    });
                }
            }
        }
        let reply = self.send(spec, &ctx, Some(key), &spec.conflict).await?;
        let existing = spec.conflict.contains(&reply.status);
        let id = spec
            .id
            .as_ref()
            .and_then(|p| p.get(&reply.body))
            .map(crate::template::value_text)
            .unwrap_or_else(|| key.to_string());
        Ok(WriteRef {
            system: self.system.clone(),
            id,
            existing,
        })
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[async_trait]
impl Connector for RestConnector {
    fn system(&self) -> &str {
        &self.system
    }

    async fn find_customer_by_phone(&self, phone: &E164) -> Result<Option<Customer>, CrmError> {
        let records = self
            .read_records(Operation::FindCustomer, &context::phone(phone))
            .await?;
        records
            .first()
            .map(|r| self.customer(Operation::FindCustomer, r))
            .transpose()
    }

    async fn get_customer(&self, id: &str) -> Result<Option<Customer>, CrmError> {
        let records = self
            .read_records(Operation::GetCustomer, &context::single("id", id))
            .await?;
        records
            .first()
            .map(|r| self.customer(Operation::GetCustomer, r))
            .transpose()
    }

    async fn list_orders(&self, customer_id: &str) -> Result<Vec<Order>, CrmError> {
        let records = self
            .read_records(
                Operation::ListOrders,
                &context::single("customer_id", customer_id),
            )
            .await?;
        records
            .iter()
            .map(|r| self.order(Operation::ListOrders, r))
            .collect()
    }

    async fn order_status(&self, order_id: &str) -> Result<Option<Order>, CrmError> {
        let records = self
            .read_records(
                Operation::OrderStatus,
                &context::single("order_id", order_id),
            )
            .await?;
        records
            .first()
            .map(|r| self.order(Operation::OrderStatus, r))
            .transpose()
    }

    async fn stock(&self, query: &ProductQuery) -> Result<Vec<StockLevel>, CrmError> {
        let records = self
            .read_records(Operation::Stock, &context::stock(query))
            .await?;
        let spec = self.op(Operation::Stock)?;
        let f = |name: &str| spec.fields.get(name);
        let mut levels: Vec<StockLevel> = Vec::new();
        for r in &records {
            let sku = f("sku")
                .and_then(|s| s.text(r, &self.maps))
                .ok_or_else(|| self.missing(Operation::Stock, "sku", spec))?;
            levels.push(StockLevel {
                sku,
                name: f("name")
                    .and_then(|s| s.text(r, &self.maps))
                    .unwrap_or_default(),
                quantity: f("quantity").and_then(|s| s.number(r)).unwrap_or(0.0),
                forecast: f("forecast").and_then(|s| s.number(r)),
                score: 1.0,
            });
        }
        Ok(rank_stock(query, levels))
    }

    async fn create_ticket(&self, t: &NewTicket, key: &str) -> Result<WriteRef, CrmError> {
        self.write(Operation::CreateTicket, context::ticket(t, key), key)
            .await
    }

    async fn log_call(&self, call: &CallLog, key: &str) -> Result<WriteRef, CrmError> {
        self.write(Operation::LogCall, context::call(call, key), key)
            .await
    }

    async fn create_task(&self, t: &NewTask, key: &str) -> Result<WriteRef, CrmError> {
        self.write(Operation::CreateTask, context::task(t, key), key)
            .await
    }
}

/// Order a system's stock answer by how well it matches: exact SKU matches
/// only when there are any; for spoken names, the fuzzy score (systems
/// search loosely and return near misses).
pub fn rank_stock(query: &ProductQuery, mut levels: Vec<StockLevel>) -> Vec<StockLevel> {
    match query {
        ProductQuery::Sku(sku) => {
            if levels
                .iter()
                .any(|l| l.sku.eq_ignore_ascii_case(sku.trim()))
            {
                levels.retain(|l| l.sku.eq_ignore_ascii_case(sku.trim()));
            }
            levels
        }
        ProductQuery::Name(name) => {
            for l in &mut levels {
                l.score = fuzzy::score(name, &l.name);
            }
            levels.retain(|l| l.score >= fuzzy::MIN_SCORE);
            levels.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.sku.cmp(&b.sku)));
            levels
        }
    }
}

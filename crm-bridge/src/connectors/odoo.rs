//! Odoo 19+ over its External JSON-2 API (`POST /json/2/<model>/<method>`,
//! bearer API key): callers from `res.partner`, orders from `sale.order`
//! and its lines, stock from `stock.quant` in internal locations, call logs
//! as notes posted on the partner, tickets in `helpdesk.ticket` (a
//! configurable model).
//!
//! Odoo has no idempotency key, so writes carry the outbox key in their
//! text (`voxbridge-key: vb-…`) and look it up first. Every JSON-2 call is
//! its own transaction, so a write that reached Odoo is found by the lookup
//! whatever happened to its reply.
//!
//! Requests and replies follow "External JSON-2 API" in the Odoo 19
//! developer reference (request headers, keyword parameters in the body,
//! the method's return value as the 200 body, errors as 4xx/5xx with
//! `name`/`message`).

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::rest::rank_stock;
use super::vendor::{text, ApiClient, FieldOverrides, Overrides};
use crate::auth::AuthConfig;
use crate::connector::{Connector, Operation};
use crate::context;
use crate::error::CrmError;
use crate::mapping::{map_value, ValueMaps};
use crate::model::{
    CallLog, Customer, NewTicket, Order, OrderLine, Priority, ProductQuery, StockLevel, WriteRef,
};
use crate::phone::E164;

fn default_phone_field() -> String {
    "phone_sanitized".into()
}

fn default_ticket_model() -> String {
    "helpdesk.ticket".into()
}

/// The YAML of a `kind: odoo` system.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OdooConfig {
    pub base_url: String,
    /// Sent as `X-Odoo-Database` when the server hosts several databases.
    #[serde(default)]
    pub database: Option<String>,
    /// `{ type: bearer, token: { env: ODOO_API_KEY } }`.
    pub auth: AuthConfig,
    /// Partner field compared with the caller's E.164 number
    /// (`phone_sanitized` is Odoo's E.164 form of the phone).
    #[serde(default = "default_phone_field")]
    pub phone_field: String,
    #[serde(default)]
    pub tier_field: Option<String>,
    #[serde(default)]
    pub tier_map: Option<String>,
    /// Value map for `sale.order` states (defaults to voxbridge's words).
    #[serde(default)]
    pub order_status_map: Option<String>,
    #[serde(default = "default_ticket_model")]
    pub ticket_model: String,
    #[serde(default)]
    pub value_maps: ValueMaps,
    #[serde(default)]
    pub fields: FieldOverrides,
}

pub struct Odoo {
    api: ApiClient,
    config: OdooConfig,
    overrides: Overrides,
}

fn key_marker(key: &str) -> String {
    format!("voxbridge-key: {key}")
}

fn default_order_status(state: &str) -> String {
    match state {
        "draft" => "draft",
        "sent" => "quoted",
        "sale" => "confirmed",
        "done" => "done",
        "cancel" => "cancelled",
        other => other,
    }
    .to_string()
}

fn priority(p: Priority) -> &'static str {
    match p {
        Priority::Low => "0",
        Priority::Normal => "1",
        Priority::High => "2",
        Priority::Urgent => "3",
    }
}

/// `[id, "display name"]` many2one values.
fn many2one(v: &Value) -> Option<(i64, String)> {
    let a = v.as_array()?;
    Some((a.first()?.as_i64()?, a.get(1)?.as_str()?.to_string()))
}

impl Odoo {
    pub fn new(system: &str, config: &OdooConfig, timeout: Duration) -> Result<Odoo, CrmError> {
        for m in [&config.tier_map, &config.order_status_map]
            .into_iter()
            .flatten()
        {
            if !config.value_maps.contains_key(m) {
                return Err(CrmError::Invalid {
                    system: system.into(),
                    message: format!("no value map named `{m}`"),
                });
            }
        }
        let mut api = ApiClient::new(system, &config.base_url, &config.auth, timeout)?;
        if let Some(db) = &config.database {
            api = api.with_header("X-Odoo-Database", db);
        }
        Ok(Odoo {
            api,
            overrides: Overrides::parse(system, &config.fields, &config.value_maps)?,
            config: config.clone(),
        })
    }

    /// Call `model.method` with keyword parameters.
    async fn rpc(&self, model: &str, method: &str, params: Value) -> Result<Value, CrmError> {
        let reply = self
            .api
            .call(
                Method::POST,
                &format!("/json/2/{model}/{method}"),
                &[],
                Some(&params),
                &[],
                &[],
            )
            .await?;
        Ok(reply.body)
    }

    async fn search_read(&self, model: &str, params: Value) -> Result<Vec<Value>, CrmError> {
        match self.rpc(model, "search_read", params).await? {
            Value::Array(rows) => Ok(rows),
            other => Err(self.api.protocol(format!(
                "{model}.search_read returned {other} instead of a list"
            ))),
        }
    }

    fn partner_fields(&self) -> Vec<String> {
        let mut f: Vec<String> = ["id", "name", "email", "phone", "lang"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        if let Some(t) = &self.config.tier_field {
            f.push(t.clone());
        }
        f
    }

    fn customer(&self, p: &Value) -> Option<Customer> {
        let tier = self
            .config
            .tier_field
            .as_deref()
            .and_then(|f| match p.get(f) {
                // A many2one (a category) reads as its name.
                Some(v @ Value::Array(_)) => many2one(v).map(|(_, n)| n),
                _ => text(p, f),
            })
            .map(|t| {
                match self
                    .config
                    .tier_map
                    .as_ref()
                    .and_then(|m| self.config.value_maps.get(m))
                {
                    Some(map) => map_value(map, &t),
                    None => t,
                }
            });
        Some(Customer {
            id: text(p, "id")?,
            system: self.api.system().to_string(),
            name: text(p, "name").unwrap_or_default(),
            phone: text(p, "phone"),
            email: text(p, "email"),
            tier,
            language: text(p, "lang").map(|l| l.replace('_', "-")),
            ..Customer::default()
        })
    }

    fn partner_id(&self, id: &str) -> Result<i64, CrmError> {
        id.trim().parse().map_err(|_| CrmError::Invalid {
            system: self.api.system().to_string(),
            message: format!("`{id}` is not an Odoo record id"),
        })
    }

    async fn orders(&self, domain: Value) -> Result<Vec<Order>, CrmError> {
        let rows = self
            .search_read(
                "sale.order",
                json!({
                    "domain": domain,
                    "fields": ["name", "state", "date_order", "amount_total", "currency_id", "partner_id"],
                    "order": "date_order desc, id desc",
                    "limit": 20
                }),
            )
            .await?;
        let ids: Vec<i64> = rows
            .iter()
            .filter_map(|r| r.get("id").and_then(Value::as_i64))
            .collect();
        let mut lines: BTreeMap<i64, Vec<OrderLine>> = BTreeMap::new();
        if !ids.is_empty() {
            let line_rows = self
                .search_read(
                    "sale.order.line",
                    json!({
                        "domain": [["order_id", "in", ids]],
                        "fields": ["order_id", "product_id", "name", "product_uom_qty"]
                    }),
                )
                .await?;
            for l in line_rows {
                let Some((order, _)) = l.get("order_id").and_then(many2one) else {
                    continue;
                };
                lines.entry(order).or_default().push(OrderLine {
                    sku: None,
                    name: l
                        .get("product_id")
                        .and_then(many2one)
                        .map(|(_, n)| n)
                        .or_else(|| text(&l, "name"))
                        .unwrap_or_default(),
                    quantity: l
                        .get("product_uom_qty")
                        .and_then(Value::as_f64)
                        .unwrap_or(0.0),
                });
            }
        }
        let status_map = self
            .config
            .order_status_map
            .as_ref()
            .and_then(|m| self.config.value_maps.get(m));
        Ok(rows
            .iter()
            .filter_map(|r| {
                let id = r.get("id").and_then(Value::as_i64)?;
                let state = text(r, "state").unwrap_or_default();
                Some(Order {
                    id: text(r, "name")?,
                    customer_id: r
                        .get("partner_id")
                        .and_then(many2one)
                        .map(|(i, _)| i.to_string()),
                    status: match status_map {
                        Some(m) => map_value(m, &state),
                        None => default_order_status(&state),
                    },
                    placed_at: text(r, "date_order"),
                    total: r.get("amount_total").map(|v| v.to_string()),
                    currency: r.get("currency_id").and_then(many2one).map(|(_, n)| n),
                    lines: lines.remove(&id).unwrap_or_default(),
                    fields: BTreeMap::new(),
                })
            })
            .collect())
    }

    /// The first id from `create`'s reply (`[id]` or `id`).
    fn created_id(&self, v: &Value) -> Result<String, CrmError> {
        match v {
            Value::Array(a) => a.first().and_then(Value::as_i64),
            other => other.as_i64(),
        }
        .map(|i| i.to_string())
        .ok_or_else(|| {
            self.api
                .protocol(format!("create returned {v} instead of an id"))
        })
    }
}

#[async_trait]
impl Connector for Odoo {
    fn system(&self) -> &str {
        self.api.system()
    }

    async fn find_customer_by_phone(&self, phone: &E164) -> Result<Option<Customer>, CrmError> {
        let rows = self
            .search_read(
                "res.partner",
                json!({
                    "domain": [[self.config.phone_field, "=", phone.as_str()]],
                    "fields": self.partner_fields(),
                    "limit": 1
                }),
            )
            .await?;
        Ok(rows.first().and_then(|p| self.customer(p)))
    }

    async fn get_customer(&self, id: &str) -> Result<Option<Customer>, CrmError> {
        let rows = self
            .search_read(
                "res.partner",
                json!({"domain": [["id", "=", self.partner_id(id)?]], "fields": self.partner_fields(), "limit": 1}),
            )
            .await?;
        Ok(rows.first().and_then(|p| self.customer(p)))
    }

    async fn list_orders(&self, customer_id: &str) -> Result<Vec<Order>, CrmError> {
        self.orders(json!([["partner_id", "=", self.partner_id(customer_id)?]]))
            .await
    }

    async fn order_status(&self, order_id: &str) -> Result<Option<Order>, CrmError> {
        Ok(self
            .orders(json!([["name", "=ilike", order_id.trim()]]))
            .await?
            .into_iter()
            .next())
    }

    async fn stock(&self, query: &ProductQuery) -> Result<Vec<StockLevel>, CrmError> {
        let domain = match query {
            ProductQuery::Sku(sku) => json!([["default_code", "=ilike", sku.trim()]]),
            ProductQuery::Name(name) => {
                let words: Vec<String> = crate::fuzzy::tokens(name)
                    .into_iter()
                    .map(|w| w.chars().take(4).collect())
                    .collect();
                if words.is_empty() {
                    return Ok(Vec::new());
                }
                // Prefix notation: n-1 ORs before n conditions.
                let mut d: Vec<Value> = vec![json!("|"); words.len() - 1];
                d.extend(words.iter().map(|w| json!(["name", "ilike", w])));
                Value::Array(d)
            }
        };
        let products = self
            .search_read(
                "product.product",
                json!({"domain": domain, "fields": ["id", "default_code", "name"], "limit": 50}),
            )
            .await?;
        let ids: Vec<i64> = products
            .iter()
            .filter_map(|p| p.get("id").and_then(Value::as_i64))
            .collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let quants = self
            .search_read(
                "stock.quant",
                json!({
                    "domain": [["product_id", "in", ids], ["location_id.usage", "=", "internal"]],
                    "fields": ["product_id", "quantity", "reserved_quantity"]
                }),
            )
            .await?;
        let mut on_hand: BTreeMap<i64, (f64, f64)> = BTreeMap::new();
        for q in &quants {
            if let Some((pid, _)) = q.get("product_id").and_then(many2one) {
                let e = on_hand.entry(pid).or_default();
                e.0 += q.get("quantity").and_then(Value::as_f64).unwrap_or(0.0);
                e.1 += q
                    .get("reserved_quantity")
                    .and_then(Value::as_f64)
                    .unwrap_or(0.0);
            }
        }
        let levels = products
            .iter()
            .filter_map(|p| {
                let id = p.get("id").and_then(Value::as_i64)?;
                let (qty, reserved) = on_hand.get(&id).copied().unwrap_or_default();
                Some(StockLevel {
                    sku: text(p, "default_code").unwrap_or_else(|| id.to_string()),
                    name: text(p, "name").unwrap_or_default(),
                    quantity: qty,
                    // Free to promise: on hand less what is reserved.
                    forecast: Some(qty - reserved),
                    score: 1.0,
                })
            })
            .collect();
        Ok(rank_stock(query, levels))
    }

    async fn create_ticket(&self, t: &NewTicket, key: &str) -> Result<WriteRef, CrmError> {
        let model = &self.config.ticket_model;
        let existing = self
            .search_read(
                model,
                json!({"domain": [["description", "ilike", key]], "fields": ["id"], "limit": 1}),
            )
            .await?;
        if let Some(id) = existing.first().and_then(|r| text(r, "id")) {
            return Ok(WriteRef {
                system: self.api.system().to_string(),
                id,
                existing: true,
            });
        }
        let mut vals = Map::new();
        vals.insert("name".into(), json!(t.subject));
        vals.insert(
            "description".into(),
            json!(format!("{}\n\n{}", t.body, key_marker(key))),
        );
        vals.insert("priority".into(), json!(priority(t.priority)));
        if let Some(c) = &t.customer_id {
            vals.insert("partner_id".into(), json!(self.partner_id(c)?));
        }
        if let Some(p) = &t.phone {
            vals.insert("partner_phone".into(), json!(p));
        }
        self.overrides
            .apply(Operation::CreateTicket, &context::ticket(t, key), &mut vals);
        let created = self
            .rpc(model, "create", json!({"vals_list": [vals]}))
            .await?;
        Ok(WriteRef {
            system: self.api.system().to_string(),
            id: self.created_id(&created)?,
            existing: false,
        })
    }

    async fn log_call(&self, c: &CallLog, key: &str) -> Result<WriteRef, CrmError> {
        let Some(customer) = &c.customer_id else {
            return Err(CrmError::Invalid {
                system: self.api.system().to_string(),
                message: "Odoo call logs are notes on a partner; this call has no customer".into(),
            });
        };
        let partner = self.partner_id(customer)?;
        let existing = self
            .search_read(
                "mail.message",
                json!({
                    "domain": [["model", "=", "res.partner"], ["res_id", "=", partner], ["body", "ilike", key]],
                    "fields": ["id"],
                    "limit": 1
                }),
            )
            .await?;
        if let Some(id) = existing.first().and_then(|r| text(r, "id")) {
            return Ok(WriteRef {
                system: self.api.system().to_string(),
                id,
                existing: true,
            });
        }
        let escape = |s: &str| {
            s.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
        };
        let mut html = format!("<p><b>{}</b></p>", escape(&super::call_text::subject(c)));
        for line in super::call_text::body(c).lines() {
            html.push_str(&format!("<p>{}</p>", escape(line)));
        }
        html.push_str(&format!("<p>{}</p>", key_marker(key)));
        let mut params = Map::new();
        params.insert("ids".into(), json!([partner]));
        params.insert("body".into(), json!(html));
        params.insert("message_type".into(), json!("comment"));
        params.insert("subtype_xmlid".into(), json!("mail.mt_note"));
        self.overrides
            .apply(Operation::LogCall, &context::call(c, key), &mut params);
        let posted = self
            .rpc("res.partner", "message_post", Value::Object(params))
            .await?;
        Ok(WriteRef {
            system: self.api.system().to_string(),
            id: self.created_id(&posted)?,
            existing: false,
        })
    }
}

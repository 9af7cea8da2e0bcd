//! Tryton (7.0 LTS) over JSON-RPC: customers are parties found by the
//! E.164 form of their phone contact mechanisms, orders are sales, stock is
//! product quantities in a warehouse, and the call log is a note attached
//! to the party.
//!
//! The protocol: `POST /<database>/` with `{"id", "method", "params"}`;
//! `common.db.login` returns `[user id, session]`, then every call carries
//! `Authorization: Session base64(login:uid:session)`. A 401 means the
//! session expired: log in again once. Errors come back as `{"error":
//! [exception, args]}`; values of some types as `{"__class__": "Decimal",
//! "decimal": "…"}` and `{"__class__": "date", …}`.
//!
//! Tryton has no tickets or tasks: route those to the helpdesk.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::{Mutex, OnceCell};

use super::rest::rank_stock;
use crate::connector::Connector;
use crate::error::CrmError;
use crate::http::HttpClient;
use crate::mapping::{map_value, ValueMaps};
use crate::model::{CallLog, Customer, Order, OrderLine, ProductQuery, StockLevel, WriteRef};
use crate::phone::E164;
use crate::secret::{Secret, SecretSource};

/// The YAML of a `kind: tryton` system.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrytonConfig {
    /// `http://erp.example.com:8000`.
    pub url: String,
    pub database: String,
    pub user: String,
    pub password: SecretSource,
    /// Code of the warehouse whose stock is quoted (default: the first).
    #[serde(default)]
    pub warehouse: Option<String>,
    /// Value map from party category names to tiers.
    #[serde(default)]
    pub tier_map: Option<String>,
    #[serde(default)]
    pub value_maps: ValueMaps,
    /// Language for names and messages (`en`, `zh_CN`…).
    #[serde(default)]
    pub language: Option<String>,
}

#[derive(Clone)]
struct Session {
    header: String,
}

pub struct Tryton {
    system: String,
    endpoint: String,
    http: HttpClient,
    config: TrytonConfig,
    password: Secret,
    session: Mutex<Option<Session>>,
    warehouse: OnceCell<i64>,
    next_id: AtomicU64,
}

impl Tryton {
    pub fn new(system: &str, config: &TrytonConfig, timeout: Duration) -> Result<Tryton, CrmError> {
        let invalid = |message: String| CrmError::Invalid {
            system: system.into(),
            message,
        };
        reqwest::Url::parse(&config.url)
            .map_err(|e| invalid(format!("url `{}`: {e}", config.url)))?;
        if config.database.is_empty() || config.database.contains('/') {
            return Err(invalid("database must be a plain name".into()));
        }
        if let Some(m) = &config.tier_map {
            if !config.value_maps.contains_key(m) {
                return Err(invalid(format!("tier_map: no value map named `{m}`")));
            }
        }
        let password = config
            .password
            .load()
            .map_err(|e| invalid(format!("password: {e}")))?;
        Ok(Tryton {
            system: system.to_string(),
            endpoint: format!("{}/{}/", config.url.trim_end_matches('/'), config.database),
            http: HttpClient::new(system, &config.url, timeout)?,
            config: config.clone(),
            password,
            session: Mutex::new(None),
            warehouse: OnceCell::new(),
            next_id: AtomicU64::new(1),
        })
    }

    fn context(&self) -> Value {
        match &self.config.language {
            Some(l) => json!({ "language": l }),
            None => json!({}),
        }
    }

    async fn post(
        &self,
        method: &str,
        params: Value,
        session: Option<&Session>,
    ) -> Result<Value, CrmError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut req = self
            .http
            .request(Method::POST, &self.endpoint)
            .json(&json!({"id": id, "method": method, "params": params}));
        if let Some(s) = session {
            req = req.header("Authorization", &s.header);
        }
        let reply = self.http.send(req, &[]).await?;
        if let Some(err) = reply.body.get("error").filter(|e| !e.is_null()) {
            return Err(self.rpc_error(method, err));
        }
        reply
            .body
            .get("result")
            .cloned()
            .ok_or_else(|| self.protocol(format!("{method}: reply has neither result nor error")))
    }

    fn rpc_error(&self, method: &str, err: &Value) -> CrmError {
        let name = err.get(0).and_then(Value::as_str).unwrap_or("error");
        let detail = err
            .get(1)
            .and_then(|a| a.get(0).or(Some(a)))
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .unwrap_or_default();
        let message = format!("{method}: {name}: {}", crate::mask::mask_text(&detail));
        if name == "LoginException" || name == "AccessError" && detail.contains("login") {
            CrmError::Auth {
                system: self.system.clone(),
                message,
            }
        } else {
            self.protocol(message)
        }
    }

    fn protocol(&self, message: String) -> CrmError {
        CrmError::Protocol {
            system: self.system.clone(),
            message,
        }
    }

    async fn login(&self) -> Result<Session, CrmError> {
        let result = self
            .post(
                "common.db.login",
                json!([self.config.user, {"password": self.password.expose()}, self.config.language.as_deref().unwrap_or("en")]),
                None,
            )
            .await
            .map_err(|e| match e {
                CrmError::Auth { .. } => CrmError::Auth {
                    system: self.system.clone(),
                    message: format!("login of `{}` refused", self.config.user),
                },
                other => other,
            })?;
        let uid = result.get(0).and_then(Value::as_i64);
        let token = result.get(1).and_then(Value::as_str);
        let (Some(uid), Some(token)) = (uid, token) else {
            return Err(CrmError::Auth {
                system: self.system.clone(),
                message: format!("login of `{}` refused", self.config.user),
            });
        };
        let raw = format!("{}:{uid}:{token}", self.config.user);
        Ok(Session {
            header: format!(
                "Session {}",
                base64::engine::general_purpose::STANDARD.encode(raw)
            ),
        })
    }

    /// Call a method with the session, logging in first or again after a
    /// 401.
    async fn call(&self, method: &str, params: Value) -> Result<Value, CrmError> {
        let session = {
            let mut slot = self.session.lock().await;
            match slot.as_ref() {
                Some(s) => s.clone(),
                None => {
                    let s = self.login().await?;
                    *slot = Some(s.clone());
                    s
                }
            }
        };
        match self.post(method, params.clone(), Some(&session)).await {
            Err(CrmError::Auth { .. }) => {
                let fresh = self.login().await?;
                *self.session.lock().await = Some(fresh.clone());
                self.post(method, params, Some(&fresh)).await
            }
            other => other,
        }
    }

    async fn search_read(
        &self,
        model: &str,
        domain: Value,
        limit: Option<u32>,
        order: Value,
        fields: &[&str],
        context: Value,
    ) -> Result<Vec<Value>, CrmError> {
        let result = self
            .call(
                &format!("model.{model}.search_read"),
                json!([domain, 0, limit, order, fields, context]),
            )
            .await?;
        match result {
            Value::Array(rows) => Ok(rows),
            other => Err(self.protocol(format!("{model}.search_read returned {other}"))),
        }
    }

    async fn warehouse(&self) -> Result<i64, CrmError> {
        self.warehouse
            .get_or_try_init(|| async {
                let mut domain = vec![json!(["type", "=", "warehouse"])];
                if let Some(code) = &self.config.warehouse {
                    domain.push(json!(["code", "=", code]));
                }
                let rows = self
                    .search_read(
                        "stock.location",
                        Value::Array(domain),
                        Some(1),
                        json!([["id", "ASC"]]),
                        &["id"],
                        self.context(),
                    )
                    .await?;
                rows.first()
                    .and_then(|r| r.get("id"))
                    .and_then(Value::as_i64)
                    .ok_or_else(|| self.protocol("no warehouse location found".into()))
            })
            .await
            .copied()
    }

    async fn party(&self, id: i64) -> Result<Option<Customer>, CrmError> {
        let ctx = self.context();
        let (party, mechanisms) = tokio::join!(
            self.search_read(
                "party.party",
                json!([["id", "=", id]]),
                Some(1),
                Value::Null,
                &["name", "code", "lang.code", "categories.name"],
                ctx.clone(),
            ),
            self.search_read(
                "party.contact_mechanism",
                json!([["party", "=", id]]),
                None,
                json!([["sequence", "ASC"], ["id", "ASC"]]),
                &["type", "value", "value_compact"],
                ctx.clone(),
            )
        );
        let (party, mechanisms) = (party?, mechanisms?);
        let Some(p) = party.first() else {
            return Ok(None);
        };
        let first_of = |types: &[&str], field: &str| {
            mechanisms
                .iter()
                .find(|m| {
                    m.get("type")
                        .and_then(Value::as_str)
                        .is_some_and(|t| types.contains(&t))
                })
                .and_then(|m| m.get(field).and_then(Value::as_str))
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let categories: Vec<String> = p
            .get("categories.")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let tier = match self
            .config
            .tier_map
            .as_ref()
            .and_then(|m| self.config.value_maps.get(m))
        {
            Some(map) => categories
                .iter()
                .find(|c| map.contains_key(c.as_str()))
                .or(categories.first())
                .map(|c| map_value(map, c)),
            None => categories.first().cloned(),
        };
        let mut fields = BTreeMap::new();
        if let Some(code) = p.get("code").and_then(Value::as_str) {
            fields.insert("code".to_string(), code.to_string());
        }
        Ok(Some(Customer {
            id: id.to_string(),
            system: self.system.clone(),
            name: p
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            phone: first_of(&["mobile", "phone"], "value_compact")
                .or_else(|| first_of(&["mobile", "phone"], "value")),
            email: first_of(&["email"], "value"),
            tier,
            language: p
                .get("lang.")
                .and_then(|l| l.get("code"))
                .and_then(Value::as_str)
                .map(|c| c.replace('_', "-")),
            fields,
        }))
    }

    async fn sales(&self, domain: Value, limit: u32) -> Result<Vec<Order>, CrmError> {
        let ctx = self.context();
        let rows = self
            .search_read(
                "sale.sale",
                domain,
                Some(limit),
                json!([["sale_date", "DESC"], ["id", "DESC"]]),
                &[
                    "number",
                    "reference",
                    "state",
                    "sale_date",
                    "total_amount",
                    "currency.code",
                    "party",
                ],
                ctx.clone(),
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
                    "sale.line",
                    json!([["sale", "in", ids], ["type", "=", "line"]]),
                    None,
                    json!([["sequence", "ASC"], ["id", "ASC"]]),
                    &[
                        "sale",
                        "product.code",
                        "product.name",
                        "description",
                        "quantity",
                    ],
                    ctx,
                )
                .await?;
            for l in line_rows {
                let Some(sale) = l.get("sale").and_then(Value::as_i64) else {
                    continue;
                };
                let product = l.get("product.");
                lines.entry(sale).or_default().push(OrderLine {
                    sku: product
                        .and_then(|p| p.get("code"))
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    name: product
                        .and_then(|p| p.get("name"))
                        .and_then(Value::as_str)
                        .or_else(|| l.get("description").and_then(Value::as_str))
                        .unwrap_or_default()
                        .to_string(),
                    quantity: l.get("quantity").and_then(Value::as_f64).unwrap_or(0.0),
                });
            }
        }
        Ok(rows
            .iter()
            .filter_map(|r| {
                let id = r.get("id").and_then(Value::as_i64)?;
                let text = |k: &str| {
                    r.get(k)
                        .and_then(Value::as_str)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                };
                let mut fields = BTreeMap::new();
                if let Some(reference) = text("reference") {
                    fields.insert("reference".to_string(), reference);
                }
                Some(Order {
                    // Drafts have no number yet; their reference is what
                    // the customer has.
                    id: text("number")
                        .or_else(|| text("reference"))
                        .unwrap_or_else(|| id.to_string()),
                    customer_id: r
                        .get("party")
                        .and_then(Value::as_i64)
                        .map(|p| p.to_string()),
                    status: sale_status(&text("state").unwrap_or_default()),
                    placed_at: r.get("sale_date").and_then(decode_scalar),
                    total: r.get("total_amount").and_then(decode_scalar),
                    currency: r
                        .get("currency.")
                        .and_then(|c| c.get("code"))
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    lines: lines.remove(&id).unwrap_or_default(),
                    fields,
                })
            })
            .collect())
    }
}

fn sale_status(state: &str) -> String {
    match state {
        "quotation" => "quoted",
        other => other,
    }
    .to_string()
}

/// Tryton's JSON extensions: Decimal, date and datetime objects as text.
fn decode_scalar(v: &Value) -> Option<String> {
    match v {
        Value::Null | Value::Bool(false) => None,
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Object(o) => {
            let num = |k: &str| o.get(k).and_then(Value::as_i64).unwrap_or(0);
            match o.get("__class__").and_then(Value::as_str)? {
                "Decimal" => o.get("decimal").and_then(Value::as_str).map(str::to_string),
                "date" => Some(format!(
                    "{:04}-{:02}-{:02}",
                    num("year"),
                    num("month"),
                    num("day")
                )),
                "datetime" => Some(format!(
                    "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                    num("year"),
                    num("month"),
                    num("day"),
                    num("hour"),
                    num("minute"),
                    num("second")
                )),
                _ => None,
            }
        }
        _ => None,
    }
}

#[async_trait]
impl Connector for Tryton {
    fn system(&self) -> &str {
        &self.system
    }

    async fn find_customer_by_phone(&self, phone: &E164) -> Result<Option<Customer>, CrmError> {
        // value_compact is Tryton's E.164 form of phone-type mechanisms.
        let rows = self
            .search_read(
                "party.contact_mechanism",
                json!([
                    ["value_compact", "=", phone.as_str()],
                    ["type", "in", ["phone", "mobile"]]
                ]),
                Some(1),
                json!([["id", "ASC"]]),
                &["party"],
                self.context(),
            )
            .await?;
        match rows
            .first()
            .and_then(|r| r.get("party"))
            .and_then(Value::as_i64)
        {
            Some(party) => self.party(party).await,
            None => Ok(None),
        }
    }

    async fn get_customer(&self, id: &str) -> Result<Option<Customer>, CrmError> {
        match id.trim().parse::<i64>() {
            Ok(n) => self.party(n).await,
            Err(_) => Ok(None),
        }
    }

    async fn list_orders(&self, customer_id: &str) -> Result<Vec<Order>, CrmError> {
        let Ok(party) = customer_id.trim().parse::<i64>() else {
            return Ok(Vec::new());
        };
        self.sales(json!([["party", "=", party]]), 20).await
    }

    async fn order_status(&self, order_id: &str) -> Result<Option<Order>, CrmError> {
        let wanted = order_id.trim();
        let domain = json!([
            "OR",
            ["number", "ilike", wanted],
            ["reference", "ilike", wanted]
        ]);
        Ok(self.sales(domain, 1).await?.into_iter().next())
    }

    async fn stock(&self, query: &ProductQuery) -> Result<Vec<StockLevel>, CrmError> {
        let warehouse = self.warehouse().await?;
        let domain = match query {
            ProductQuery::Sku(sku) => json!([["code", "ilike", sku.trim()]]),
            ProductQuery::Name(name) => {
                let words: Vec<Value> = crate::fuzzy::tokens(name)
                    .into_iter()
                    .map(|w| {
                        json!([
                            "name",
                            "ilike",
                            format!("%{}%", w.chars().take(4).collect::<String>())
                        ])
                    })
                    .collect();
                if words.is_empty() {
                    return Ok(Vec::new());
                }
                let mut d = vec![json!("OR")];
                d.extend(words);
                Value::Array(d)
            }
        };
        let mut ctx = self.context();
        ctx["locations"] = json!([warehouse]);
        let rows = self
            .search_read(
                "product.product",
                domain,
                Some(50),
                json!([["id", "ASC"]]),
                &["code", "name", "quantity", "forecast_quantity"],
                ctx,
            )
            .await?;
        let levels = rows
            .iter()
            .map(|r| StockLevel {
                sku: r
                    .get("code")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| r.get("id").map(Value::to_string).unwrap_or_default()),
                name: r
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                quantity: r.get("quantity").and_then(Value::as_f64).unwrap_or(0.0),
                forecast: r.get("forecast_quantity").and_then(Value::as_f64),
                score: 1.0,
            })
            .collect();
        Ok(rank_stock(query, levels))
    }

    async fn log_call(&self, c: &CallLog, key: &str) -> Result<WriteRef, CrmError> {
        let Some(party) = c
            .customer_id
            .as_deref()
            .and_then(|id| id.trim().parse::<i64>().ok())
        else {
            return Err(CrmError::Invalid {
                system: self.system.clone(),
                message: "Tryton call logs are notes on a party; this call has no party id".into(),
            });
        };
        let resource = format!("party.party,{party}");
        let found = self
            .call(
                "model.ir.note.search",
                json!([
                    [
                        ["resource", "=", resource],
                        ["message", "ilike", format!("%{key}%")]
                    ],
                    0,
                    1,
                    null,
                    self.context()
                ]),
            )
            .await?;
        if let Some(id) = found.get(0).and_then(Value::as_i64) {
            return Ok(WriteRef {
                system: self.system.clone(),
                id: id.to_string(),
                existing: true,
            });
        }
        let mut message = format!(
            "{}\n{}",
            super::call_text::subject(c),
            super::call_text::body(c)
        );
        message.push_str(&format!("voxbridge-key: {key}"));
        let created = self
            .call(
                "model.ir.note.create",
                json!([[{"resource": resource, "message": message}], self.context()]),
            )
            .await?;
        let id = created
            .get(0)
            .and_then(Value::as_i64)
            .ok_or_else(|| self.protocol(format!("ir.note.create returned {created}")))?;
        Ok(WriteRef {
            system: self.system.clone(),
            id: id.to_string(),
            existing: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tryton_values_decode() {
        assert_eq!(
            decode_scalar(&json!({"__class__": "Decimal", "decimal": "399.00"})).as_deref(),
            Some("399.00")
        );
        assert_eq!(
            decode_scalar(&json!({"__class__": "date", "year": 2026, "month": 11, "day": 2}))
                .as_deref(),
            Some("2026-11-02")
        );
        assert_eq!(decode_scalar(&json!(false)), None);
        assert_eq!(sale_status("quotation"), "quoted");
    }
}

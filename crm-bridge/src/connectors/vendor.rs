//! What the vendor connectors (Salesforce, HubSpot, Zendesk, Odoo) share:
//! an authenticated JSON client that replaces a refused OAuth2 token once,
//! and the site's additions to the fields each connector writes.
//!
//! Every vendor connector writes sensible default fields; a site adds or
//! overrides them per kind of write with templates (`fields.call_log`,
//! `fields.ticket`, `fields.task`) and value maps, e.g. an intent level `S`
//! → `"high intent"` into a custom field.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::auth::{Auth, AuthConfig};
use crate::connector::Operation;
use crate::context;
use crate::error::CrmError;
use crate::http::{HttpClient, Reply};
use crate::mapping::ValueMaps;
use crate::template::BodyTemplate;

/// An authenticated JSON API.
#[derive(Debug, Clone)]
pub struct ApiClient {
    pub base_url: String,
    pub http: HttpClient,
    pub auth: Auth,
    headers: Vec<(String, String)>,
}

impl ApiClient {
    pub fn new(
        system: &str,
        base_url: &str,
        auth: &AuthConfig,
        timeout: Duration,
    ) -> Result<ApiClient, CrmError> {
        reqwest::Url::parse(base_url).map_err(|e| CrmError::Invalid {
            system: system.to_string(),
            message: format!("URL `{base_url}`: {e}"),
        })?;
        let http = HttpClient::new(system, base_url, timeout)?;
        let auth = Auth::from_config(system, auth, &http)?;
        Ok(ApiClient {
            base_url: base_url.trim_end_matches('/').to_string(),
            http,
            auth,
            headers: Vec::new(),
        })
    }

    /// A header sent with every request (`X-Odoo-Database`).
    pub fn with_header(mut self, name: &str, value: &str) -> ApiClient {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn system(&self) -> &str {
        self.http.system()
    }

    /// Send `body` (if any) to `path` with credentials; a 401 with an
    /// OAuth2 token gets one retry with a fresh token.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
        extra_headers: &[(&str, &str)],
        pass: &[u16],
    ) -> Result<Reply, CrmError> {
        let build = || {
            let mut req = self
                .http
                .request(method.clone(), &format!("{}{path}", self.base_url))
                .header("Accept", "application/json");
            if !query.is_empty() {
                req = req.query(query);
            }
            for (k, v) in &self.headers {
                req = req.header(k.as_str(), v.as_str());
            }
            for (k, v) in extra_headers {
                req = req.header(*k, *v);
            }
            if let Some(b) = body {
                req = req.json(b);
            }
            req
        };
        let first = self.http.send(self.auth.apply(build()).await?, pass).await;
        match first {
            Err(CrmError::Auth { .. }) if self.auth.can_refresh() => {
                self.auth.invalidate().await;
                self.http.send(self.auth.apply(build()).await?, pass).await
            }
            other => other,
        }
    }

    /// A reply that is not the expected shape.
    pub fn protocol(&self, message: impl Into<String>) -> CrmError {
        CrmError::Protocol {
            system: self.system().to_string(),
            message: message.into(),
        }
    }
}

/// The `fields:` block of a vendor system: extra or replaced fields per
/// kind of write, as templates.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FieldOverrides {
    pub call_log: BTreeMap<String, Value>,
    pub ticket: BTreeMap<String, Value>,
    pub task: BTreeMap<String, Value>,
}

/// Parsed and checked overrides.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    call_log: Vec<(String, BodyTemplate)>,
    ticket: Vec<(String, BodyTemplate)>,
    task: Vec<(String, BodyTemplate)>,
    maps: ValueMaps,
}

impl Overrides {
    pub fn parse(
        system: &str,
        config: &FieldOverrides,
        maps: &ValueMaps,
    ) -> Result<Overrides, CrmError> {
        let parse = |op: Operation,
                     fields: &BTreeMap<String, Value>|
         -> Result<Vec<(String, BodyTemplate)>, CrmError> {
            fields
                .iter()
                .map(|(name, v)| {
                    let t = BodyTemplate::from_value(v)
                        .and_then(|t| t.check(context::roots(op), maps).map(|()| t))
                        .map_err(|e| CrmError::Invalid {
                            system: system.to_string(),
                            message: format!("fields.{op}.{name}: {e}"),
                        })?;
                    Ok((name.clone(), t))
                })
                .collect()
        };
        Ok(Overrides {
            call_log: parse(Operation::LogCall, &config.call_log)?,
            ticket: parse(Operation::CreateTicket, &config.ticket)?,
            task: parse(Operation::CreateTask, &config.task)?,
            maps: maps.clone(),
        })
    }

    /// Apply the overrides for `op` to `fields`, rendering with `ctx`. A
    /// template that renders to null removes the field.
    pub fn apply(&self, op: Operation, ctx: &Value, fields: &mut Map<String, Value>) {
        let list = match op {
            Operation::LogCall => &self.call_log,
            Operation::CreateTicket => &self.ticket,
            Operation::CreateTask => &self.task,
            _ => return,
        };
        for (name, t) in list {
            match t.render(ctx, &self.maps) {
                Value::Null => {
                    fields.remove(name);
                }
                v => {
                    fields.insert(name.clone(), v);
                }
            }
        }
    }

    pub fn maps(&self) -> &ValueMaps {
        &self.maps
    }
}

/// The caller as free text may name them: the number masked to its last
/// four digits. Subjects, bodies and notes are read (and mailed, exported,
/// indexed) far more widely than the structured phone fields a CRM guards,
/// so the full number goes only into fields meant for it (a requester's
/// phone, `hs_call_from_number`, `SuppliedPhone`).
pub fn caller_text(caller: Option<&str>) -> String {
    caller
        .map(crate::mask::mask_phone)
        .unwrap_or_else(|| "unknown caller".into())
}

/// Insert `value` under `key` unless it is `None`/empty.
pub fn put(fields: &mut Map<String, Value>, key: &str, value: Option<impl Into<Value>>) {
    if let Some(v) = value {
        let v = v.into();
        if !(v.is_null() || v.as_str() == Some("")) {
            fields.insert(key.to_string(), v);
        }
    }
}

/// A string field of a JSON object.
pub fn text(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

//! Request Tracker 5 over REST2: the helpdesk. Tickets go to a queue, the
//! call log is a resolved ticket in a call-log queue, follow-ups are
//! tickets with a due date, and callers are RT users found by a user custom
//! field holding their E.164 number.
//!
//! Two RT pitfalls shape this module. REST2's `/users` search silently
//! ignores limits on the built-in phone columns and on custom fields that
//! do not exist, returning every user; so the phone lives in a user custom
//! field (`Phone`) and each hit is checked against the caller's number
//! before it counts. And RT has no idempotency key: every write carries
//! the outbox key in a ticket custom field (`Voxbridge Key`), searched with
//! TicketSQL before creating.
//!
//! Authentication is an RT auth token (`Authorization: token …`, created
//! in RT's web UI or with `RT::AuthToken->Create`) or HTTP basic.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::call_text;
use super::vendor::{caller_text, ApiClient, FieldOverrides, Overrides};
use crate::auth::AuthConfig;
use crate::connector::{Connector, Operation};
use crate::context;
use crate::error::CrmError;
use crate::mapping::{map_value, ValueMaps};
use crate::model::{CallLog, Customer, NewTask, NewTicket, Priority, WriteRef};
use crate::phone::E164;
use crate::secret::SecretSource;

fn default_phone_field() -> String {
    "Phone".into()
}
fn default_key_field() -> String {
    "Voxbridge Key".into()
}
fn default_ticket_queue() -> String {
    "General".into()
}
fn default_call_queue() -> String {
    "General".into()
}
fn default_call_status() -> String {
    "resolved".into()
}

/// The YAML of a `kind: rt` system.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RtConfig {
    /// RT's web base URL (`$WebBaseURL$WebPath`); REST2 is under
    /// `/REST/2.0`.
    pub url: String,
    /// An RT auth token (sent as `Authorization: token …`).
    #[serde(default)]
    pub token: Option<SecretSource>,
    /// Or any other authentication (HTTP basic).
    #[serde(default)]
    pub auth: Option<AuthConfig>,
    /// User custom field with the E.164 phone number.
    #[serde(default = "default_phone_field")]
    pub phone_field: String,
    /// User custom field with the service tier, and its value map.
    #[serde(default)]
    pub tier_field: Option<String>,
    #[serde(default)]
    pub tier_map: Option<String>,
    /// Ticket custom field holding the outbox key.
    #[serde(default = "default_key_field")]
    pub key_field: String,
    #[serde(default = "default_ticket_queue")]
    pub ticket_queue: String,
    #[serde(default = "default_call_queue")]
    pub call_log_queue: String,
    #[serde(default = "default_call_status")]
    pub call_log_status: String,
    #[serde(default)]
    pub task_queue: Option<String>,
    #[serde(default)]
    pub value_maps: ValueMaps,
    #[serde(default)]
    pub fields: FieldOverrides,
}

pub struct Rt {
    api: ApiClient,
    config: RtConfig,
    overrides: Overrides,
}

fn priority(p: Priority) -> u32 {
    match p {
        Priority::Low => 0,
        Priority::Normal => 50,
        Priority::High => 80,
        Priority::Urgent => 100,
    }
}

impl Rt {
    pub fn new(system: &str, config: &RtConfig, timeout: Duration) -> Result<Rt, CrmError> {
        let invalid = |message: String| CrmError::Invalid {
            system: system.into(),
            message,
        };
        let base = format!("{}/REST/2.0", config.url.trim_end_matches('/'));
        let api = match (&config.token, &config.auth) {
            (Some(token), None) => {
                let secret = token.load().map_err(|e| invalid(format!("token: {e}")))?;
                let header = format!("token {}", secret.expose());
                // The token travels as a fixed header; it is never logged
                // because errors carry only paths and masked bodies.
                ApiClient::new(system, &base, &AuthConfig::None, timeout)?
                    .with_header("Authorization", &header)
            }
            (None, Some(auth)) => ApiClient::new(system, &base, auth, timeout)?,
            _ => return Err(invalid("give exactly one of `token` and `auth`".into())),
        };
        if let Some(m) = &config.tier_map {
            if !config.value_maps.contains_key(m) {
                return Err(invalid(format!("tier_map: no value map named `{m}`")));
            }
        }
        Ok(Rt {
            api,
            overrides: Overrides::parse(system, &config.fields, &config.value_maps)?,
            config: config.clone(),
        })
    }

    fn cf_values<'a>(record: &'a Value, field: &str) -> Vec<&'a str> {
        record
            .get("CustomFields")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|cf| cf.get("name").and_then(Value::as_str) == Some(field))
            .flat_map(|cf| {
                cf.get("values")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
            })
            .filter_map(Value::as_str)
            .collect()
    }

    fn customer(&self, u: &Value) -> Option<Customer> {
        let name = u.get("Name").and_then(Value::as_str)?;
        let text = |k: &str| {
            u.get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let tier = self
            .config
            .tier_field
            .as_deref()
            .and_then(|f| Self::cf_values(u, f).first().map(|s| s.to_string()))
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
            // The user name: what RT takes as a Requestor.
            id: name.to_string(),
            system: self.api.system().to_string(),
            name: text("RealName").unwrap_or_else(|| name.to_string()),
            phone: Self::cf_values(u, &self.config.phone_field)
                .first()
                .map(|s| s.to_string()),
            email: text("EmailAddress"),
            tier,
            language: text("Lang"),
            ..Customer::default()
        })
    }

    /// The ticket carrying `key`, if one exists.
    async fn find_by_key(&self, key: &str) -> Result<Option<String>, CrmError> {
        let query = format!(
            "'CF.{{{}}}' = '{}'",
            self.config.key_field.replace('\'', "\\'"),
            key.replace('\'', "\\'")
        );
        let reply = self
            .api
            .call(
                Method::GET,
                "/tickets",
                &[("query", &query), ("per_page", "1")],
                None,
                &[],
                &[],
            )
            .await?;
        let items = reply
            .body
            .get("items")
            .and_then(Value::as_array)
            .ok_or_else(|| self.api.protocol("ticket search reply has no `items`"))?;
        Ok(items.first().and_then(|t| super::vendor::text(t, "id")))
    }

    async fn create(
        &self,
        key: &str,
        mut ticket: Map<String, Value>,
    ) -> Result<WriteRef, CrmError> {
        let system = self.api.system().to_string();
        if let Some(id) = self.find_by_key(key).await? {
            return Ok(WriteRef {
                system,
                id,
                existing: true,
            });
        }
        let mut cfs = ticket
            .remove("CustomFields")
            .and_then(|v| v.as_object().cloned())
            .unwrap_or_default();
        cfs.insert(self.config.key_field.clone(), json!(key));
        ticket.insert("CustomFields".into(), Value::Object(cfs));
        ticket.entry("ContentType").or_insert(json!("text/plain"));
        let reply = self
            .api
            .call(
                Method::POST,
                "/ticket",
                &[],
                Some(&Value::Object(ticket)),
                &[],
                &[],
            )
            .await?;
        let id = super::vendor::text(&reply.body, "id")
            .ok_or_else(|| self.api.protocol("created ticket reply has no id"))?;
        Ok(WriteRef {
            system,
            id,
            existing: false,
        })
    }

    fn requestor(
        ticket: &mut Map<String, Value>,
        customer: Option<&String>,
        email: Option<&String>,
    ) {
        if let Some(r) = customer.or(email) {
            ticket.insert("Requestor".into(), json!(r));
        }
    }
}

/// The text of a ticket: the script's body and the caller, masked. A site
/// that wants the full callback number on the ticket maps `{{ticket.phone}}`
/// into a ticket custom field with `fields.ticket`.
fn ticket_content(t: &NewTicket) -> String {
    let mut content = t.body.clone();
    if t.phone.is_some() {
        content.push_str(&format!("\n\nCaller: {}", caller_text(t.phone.as_deref())));
    }
    content
}

#[async_trait]
impl Connector for Rt {
    fn system(&self) -> &str {
        self.api.system()
    }

    async fn find_customer_by_phone(&self, phone: &E164) -> Result<Option<Customer>, CrmError> {
        let body = json!([{
            "field": format!("CustomField.{{{}}}", self.config.phone_field),
            "operator": "=",
            "value": phone.as_str()
        }]);
        let reply = self
            .api
            .call(
                Method::POST,
                "/users",
                &[
                    ("fields", "Name,RealName,EmailAddress,Lang,CustomFields"),
                    ("per_page", "20"),
                ],
                Some(&body),
                &[],
                &[],
            )
            .await?;
        let items = reply
            .body
            .get("items")
            .and_then(Value::as_array)
            .ok_or_else(|| self.api.protocol("user search reply has no `items`"))?;
        let hit = items.iter().find(|u| {
            Self::cf_values(u, &self.config.phone_field)
                .iter()
                .any(|p| phone.matches(p))
        });
        if hit.is_none() && items.len() > 1 {
            tracing::warn!(
                system = self.api.system(),
                results = items.len(),
                field = %self.config.phone_field,
                "RT returned several users for a phone search and none has the number: is the user custom field defined?"
            );
        }
        Ok(hit.and_then(|u| self.customer(u)))
    }

    async fn get_customer(&self, id: &str) -> Result<Option<Customer>, CrmError> {
        let path = format!(
            "/user/{}",
            percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC)
        );
        let reply = self
            .api
            .call(Method::GET, &path, &[], None, &[], &[404])
            .await?;
        if reply.status == 404 {
            return Ok(None);
        }
        Ok(self.customer(&reply.body))
    }

    async fn create_ticket(&self, t: &NewTicket, key: &str) -> Result<WriteRef, CrmError> {
        let mut ticket = Map::new();
        ticket.insert(
            "Queue".into(),
            json!(t
                .queue
                .clone()
                .unwrap_or_else(|| self.config.ticket_queue.clone())),
        );
        ticket.insert("Subject".into(), json!(t.subject));
        ticket.insert("Content".into(), json!(ticket_content(t)));
        ticket.insert("Priority".into(), json!(priority(t.priority)));
        Self::requestor(&mut ticket, t.customer_id.as_ref(), t.email.as_ref());
        self.overrides.apply(
            Operation::CreateTicket,
            &context::ticket(t, key),
            &mut ticket,
        );
        self.create(key, ticket).await
    }

    async fn log_call(&self, c: &CallLog, key: &str) -> Result<WriteRef, CrmError> {
        let mut ticket = Map::new();
        ticket.insert("Queue".into(), json!(self.config.call_log_queue));
        ticket.insert("Subject".into(), json!(call_text::subject(c)));
        ticket.insert("Content".into(), json!(call_text::body(c)));
        ticket.insert("Status".into(), json!(self.config.call_log_status));
        Self::requestor(&mut ticket, c.customer_id.as_ref(), None);
        self.overrides
            .apply(Operation::LogCall, &context::call(c, key), &mut ticket);
        self.create(key, ticket).await
    }

    async fn create_task(&self, t: &NewTask, key: &str) -> Result<WriteRef, CrmError> {
        let mut ticket = Map::new();
        let queue = self
            .config
            .task_queue
            .clone()
            .unwrap_or_else(|| self.config.ticket_queue.clone());
        ticket.insert("Queue".into(), json!(queue));
        ticket.insert("Subject".into(), json!(t.subject));
        ticket.insert("Content".into(), json!(t.body));
        if let Some(due) = &t.due {
            ticket.insert("Due".into(), json!(format!("{due} 09:00:00")));
        }
        if let Some(a) = &t.assignee {
            ticket.insert("Owner".into(), json!(a));
        }
        Self::requestor(&mut ticket, t.customer_id.as_ref(), None);
        self.overrides
            .apply(Operation::CreateTask, &context::task(t, key), &mut ticket);
        self.create(key, ticket).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticket_text_masks_the_callback_number() {
        let t = NewTicket {
            body: "Kettle leaks.".into(),
            phone: Some("+8613800138000".into()),
            ..NewTicket::default()
        };
        let content = ticket_content(&t);
        assert!(content.starts_with("Kettle leaks."));
        assert!(
            !content.contains("13800138000") && content.ends_with("8000"),
            "{content}"
        );
    }
}

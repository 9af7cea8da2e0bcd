//! Zendesk Support: callers found with the users search, and everything a
//! call writes as a ticket: the ticket itself, the call log (a solved ticket
//! tagged `voxbridge_call` carrying the transcript as a private note) and
//! follow-ups (a ticket of type `task` with a due date).
//!
//! Writes are idempotent twice over: the outbox key is the ticket's
//! `external_id`, looked up first (`GET /api/v2/tickets?external_id=`), and
//! is also sent as Zendesk's `Idempotency-Key` header, which covers the
//! window in which a just-created ticket may not be listed yet.
//!
//! Requests and replies follow developer.zendesk.com: "Users" (Search
//! Users, Show User), "Tickets" (List Tickets by external_id, Create
//! Ticket) and "Idempotency" in the Support API introduction.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::vendor::{put, text, ApiClient, FieldOverrides, Overrides};
use crate::auth::AuthConfig;
use crate::connector::{Connector, Operation};
use crate::context;
use crate::error::CrmError;
use crate::mapping::{map_value, ValueMaps};
use crate::model::{CallLog, Customer, NewTask, NewTicket, Priority, WriteRef};
use crate::phone::E164;

/// The YAML of a `kind: zendesk` system.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZendeskConfig {
    /// `https://yoursubdomain.zendesk.com`.
    pub base_url: String,
    /// API token: `{ type: basic, username: "agent@example.com/token",
    /// password: { env: ZENDESK_TOKEN } }`, or an OAuth bearer token.
    pub auth: AuthConfig,
    /// A user field (`user_fields.<name>`) holding the service tier.
    #[serde(default)]
    pub tier_user_field: Option<String>,
    #[serde(default)]
    pub tier_map: Option<String>,
    /// Group for call-log tickets, if any.
    #[serde(default)]
    pub call_log_group_id: Option<u64>,
    #[serde(default)]
    pub value_maps: ValueMaps,
    #[serde(default)]
    pub fields: FieldOverrides,
}

pub struct Zendesk {
    api: ApiClient,
    config: ZendeskConfig,
    overrides: Overrides,
}

fn priority(p: Priority) -> &'static str {
    match p {
        Priority::Low => "low",
        Priority::Normal => "normal",
        Priority::High => "high",
        Priority::Urgent => "urgent",
    }
}

impl Zendesk {
    pub fn new(
        system: &str,
        config: &ZendeskConfig,
        timeout: Duration,
    ) -> Result<Zendesk, CrmError> {
        if let Some(m) = &config.tier_map {
            if !config.value_maps.contains_key(m) {
                return Err(CrmError::Invalid {
                    system: system.into(),
                    message: format!("tier_map: no value map named `{m}`"),
                });
            }
        }
        Ok(Zendesk {
            api: ApiClient::new(system, &config.base_url, &config.auth, timeout)?,
            overrides: Overrides::parse(system, &config.fields, &config.value_maps)?,
            config: config.clone(),
        })
    }

    fn customer(&self, u: &Value) -> Option<Customer> {
        let tier = self
            .config
            .tier_user_field
            .as_deref()
            .and_then(|f| u.get("user_fields").and_then(|uf| text(uf, f)))
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
            id: text(u, "id")?,
            system: self.api.system().to_string(),
            name: text(u, "name").unwrap_or_default(),
            phone: text(u, "phone"),
            email: text(u, "email"),
            tier,
            language: text(u, "locale"),
            ..Customer::default()
        })
    }

    /// Find the ticket carrying `key`, else create it.
    async fn ticket_once(
        &self,
        key: &str,
        mut ticket: Map<String, Value>,
    ) -> Result<WriteRef, CrmError> {
        let system = self.api.system().to_string();
        let found = self
            .api
            .call(
                Method::GET,
                "/api/v2/tickets",
                &[("external_id", key)],
                None,
                &[],
                &[],
            )
            .await?;
        let tickets = found
            .body
            .get("tickets")
            .and_then(Value::as_array)
            .ok_or_else(|| self.api.protocol("ticket list reply has no `tickets`"))?;
        if let Some(id) = tickets.first().and_then(|t| text(t, "id")) {
            return Ok(WriteRef {
                system,
                id,
                existing: true,
            });
        }
        ticket.insert("external_id".into(), json!(key));
        let body = json!({ "ticket": ticket });
        let reply = self
            .api
            .call(
                Method::POST,
                "/api/v2/tickets",
                &[],
                Some(&body),
                &[("Idempotency-Key", key)],
                &[],
            )
            .await?;
        let id = reply
            .body
            .get("ticket")
            .and_then(|t| text(t, "id"))
            .ok_or_else(|| self.api.protocol("created ticket reply has no ticket id"))?;
        let replayed = reply
            .headers
            .get("x-idempotency-lookup")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("hit"));
        Ok(WriteRef {
            system,
            id,
            existing: replayed,
        })
    }

    /// The requester: the customer when known, else a user made from the
    /// number (Zendesk creates or matches it).
    fn requester(
        ticket: &mut Map<String, Value>,
        customer: Option<&String>,
        phone: Option<&String>,
    ) {
        match (customer, phone) {
            (Some(id), _) => {
                let id = id
                    .parse::<u64>()
                    .map(Value::from)
                    .unwrap_or_else(|_| json!(id));
                ticket.insert("requester_id".into(), id);
            }
            (None, Some(p)) => {
                ticket.insert(
                    "requester".into(),
                    json!({"name": format!("Caller {}", crate::mask::mask_phone(p)), "phone": p}),
                );
            }
            (None, None) => {}
        }
    }
}

#[async_trait]
impl Connector for Zendesk {
    fn system(&self) -> &str {
        self.api.system()
    }

    async fn find_customer_by_phone(&self, phone: &E164) -> Result<Option<Customer>, CrmError> {
        let reply = self
            .api
            .call(
                Method::GET,
                "/api/v2/users/search",
                &[("query", phone.as_str())],
                None,
                &[],
                &[],
            )
            .await?;
        let users = reply
            .body
            .get("users")
            .and_then(Value::as_array)
            .ok_or_else(|| self.api.protocol("users search reply has no `users`"))?;
        // The search is loose (any field); keep the users whose phone is
        // this number.
        Ok(users
            .iter()
            .filter(|u| text(u, "phone").is_some_and(|p| phone.matches(&p)))
            .find_map(|u| self.customer(u)))
    }

    async fn get_customer(&self, id: &str) -> Result<Option<Customer>, CrmError> {
        let path = format!(
            "/api/v2/users/{}",
            percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC)
        );
        let reply = self
            .api
            .call(Method::GET, &path, &[], None, &[], &[404])
            .await?;
        if reply.status == 404 {
            return Ok(None);
        }
        reply
            .body
            .get("user")
            .and_then(|u| self.customer(u))
            .map(Some)
            .ok_or_else(|| self.api.protocol("user reply has no user"))
    }

    async fn create_ticket(&self, t: &NewTicket, key: &str) -> Result<WriteRef, CrmError> {
        let mut ticket = Map::new();
        ticket.insert("subject".into(), json!(t.subject));
        ticket.insert("comment".into(), json!({"body": t.body, "public": false}));
        ticket.insert("priority".into(), json!(priority(t.priority)));
        ticket.insert("tags".into(), json!(["voxbridge"]));
        if let Some(q) = &t.queue {
            if let Ok(group) = q.parse::<u64>() {
                ticket.insert("group_id".into(), json!(group));
            }
        }
        Self::requester(&mut ticket, t.customer_id.as_ref(), t.phone.as_ref());
        self.overrides.apply(
            Operation::CreateTicket,
            &context::ticket(t, key),
            &mut ticket,
        );
        self.ticket_once(key, ticket).await
    }

    async fn log_call(&self, c: &CallLog, key: &str) -> Result<WriteRef, CrmError> {
        let mut ticket = Map::new();
        ticket.insert("subject".into(), json!(super::call_text::subject(c)));
        let body = super::call_text::body(c);
        ticket.insert("comment".into(), json!({"body": body, "public": false}));
        ticket.insert("status".into(), json!("solved"));
        ticket.insert("tags".into(), json!(["voxbridge", "voxbridge_call"]));
        put(&mut ticket, "group_id", self.config.call_log_group_id);
        Self::requester(&mut ticket, c.customer_id.as_ref(), c.caller.as_ref());
        self.overrides
            .apply(Operation::LogCall, &context::call(c, key), &mut ticket);
        self.ticket_once(key, ticket).await
    }

    async fn create_task(&self, t: &NewTask, key: &str) -> Result<WriteRef, CrmError> {
        let mut ticket = Map::new();
        ticket.insert("type".into(), json!("task"));
        ticket.insert("subject".into(), json!(t.subject));
        ticket.insert("comment".into(), json!({"body": t.body, "public": false}));
        ticket.insert("tags".into(), json!(["voxbridge", "voxbridge_task"]));
        if let Some(due) = &t.due {
            ticket.insert("due_at".into(), json!(format!("{due}T09:00:00Z")));
        }
        if let Some(a) = t.assignee.as_ref().and_then(|a| a.parse::<u64>().ok()) {
            ticket.insert("assignee_id".into(), json!(a));
        }
        Self::requester(&mut ticket, t.customer_id.as_ref(), t.phone.as_ref());
        self.overrides
            .apply(Operation::CreateTask, &context::task(t, key), &mut ticket);
        self.ticket_once(key, ticket).await
    }
}

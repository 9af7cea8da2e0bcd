//! HubSpot over the CRM v3 API: callers found by searching contacts'
//! phone properties, the call log written as a call engagement, tickets and
//! follow-up tasks as tickets and tasks, each associated with the contact.
//!
//! HubSpot has no idempotency key on creates, so every write first searches
//! its object for the outbox key, kept in a custom text property
//! (`voxbridge_key` by default) that the portal must define on calls,
//! tickets and tasks. HubSpot's search index lags creates by a few seconds:
//! a redelivery within that window can still duplicate, which the outbox's
//! backoff (first retry after seconds) makes unlikely.
//!
//! Requests and replies follow developers.hubspot.com: "CRM search",
//! "Engagements | Calls", "Tickets", "Engagements | Tasks" and the default
//! association type ids (call→contact 194, ticket→contact 16, task→contact
//! 204).

use std::time::Duration;

use async_trait::async_trait;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::vendor::{put, text, ApiClient, FieldOverrides, Overrides};
use crate::auth::AuthConfig;
use crate::connector::{Connector, Operation};
use crate::context;
use crate::datetime;
use crate::error::CrmError;
use crate::mapping::{map_value, ValueMaps};
use crate::model::{CallLog, Customer, NewTask, NewTicket, Priority, WriteRef};
use crate::phone::E164;

fn default_base() -> String {
    "https://api.hubapi.com".into()
}

fn default_key_property() -> String {
    "voxbridge_key".into()
}

fn default_phone_properties() -> Vec<String> {
    vec!["phone".into(), "mobilephone".into()]
}

/// The YAML of a `kind: hubspot` system.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubSpotConfig {
    #[serde(default = "default_base")]
    pub base_url: String,
    /// A private app's access token: `{ type: bearer, token: { env: … } }`.
    pub auth: AuthConfig,
    /// Custom property (calls, tickets, tasks) holding the outbox key.
    #[serde(default = "default_key_property")]
    pub key_property: String,
    /// Contact properties compared with the caller's number (E.164).
    #[serde(default = "default_phone_properties")]
    pub phone_properties: Vec<String>,
    #[serde(default)]
    pub tier_property: Option<String>,
    #[serde(default)]
    pub tier_map: Option<String>,
    /// Ticket pipeline and first stage ids.
    #[serde(default = "zero")]
    pub ticket_pipeline: String,
    #[serde(default = "one")]
    pub ticket_stage: String,
    #[serde(default)]
    pub value_maps: ValueMaps,
    #[serde(default)]
    pub fields: FieldOverrides,
}

fn zero() -> String {
    "0".into()
}

fn one() -> String {
    "1".into()
}

pub struct HubSpot {
    api: ApiClient,
    config: HubSpotConfig,
    overrides: Overrides,
}

const CALL_TO_CONTACT: u32 = 194;
const TICKET_TO_CONTACT: u32 = 16;
const TASK_TO_CONTACT: u32 = 204;

impl HubSpot {
    pub fn new(
        system: &str,
        config: &HubSpotConfig,
        timeout: Duration,
    ) -> Result<HubSpot, CrmError> {
        if let Some(m) = &config.tier_map {
            if !config.value_maps.contains_key(m) {
                return Err(CrmError::Invalid {
                    system: system.into(),
                    message: format!("tier_map: no value map named `{m}`"),
                });
            }
        }
        Ok(HubSpot {
            api: ApiClient::new(system, &config.base_url, &config.auth, timeout)?,
            overrides: Overrides::parse(system, &config.fields, &config.value_maps)?,
            config: config.clone(),
        })
    }

    fn properties(&self) -> Vec<String> {
        let mut p: Vec<String> = ["firstname", "lastname", "email", "hs_language"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        p.extend(self.config.phone_properties.iter().cloned());
        if let Some(t) = &self.config.tier_property {
            p.push(t.clone());
        }
        p
    }

    fn customer(&self, record: &Value) -> Option<Customer> {
        let props = record.get("properties")?;
        let name = [text(props, "firstname"), text(props, "lastname")]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        let tier = self
            .config
            .tier_property
            .as_deref()
            .and_then(|t| text(props, t))
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
            id: text(record, "id")?,
            system: self.api.system().to_string(),
            name,
            phone: self
                .config
                .phone_properties
                .iter()
                .find_map(|p| text(props, p)),
            email: text(props, "email"),
            tier,
            language: text(props, "hs_language"),
            ..Customer::default()
        })
    }

    /// The id of the `object` record carrying `key`, if one exists.
    async fn find_by_key(&self, object: &str, key: &str) -> Result<Option<String>, CrmError> {
        let body = json!({
            "filterGroups": [{"filters": [{"propertyName": self.config.key_property, "operator": "EQ", "value": key}]}],
            "properties": [self.config.key_property],
            "limit": 1
        });
        let reply = self
            .api
            .call(
                Method::POST,
                &format!("/crm/v3/objects/{object}/search"),
                &[],
                Some(&body),
                &[],
                &[],
            )
            .await?;
        let results = reply
            .body
            .get("results")
            .and_then(Value::as_array)
            .ok_or_else(|| self.api.protocol("search reply has no `results` list"))?;
        Ok(results.first().and_then(|r| text(r, "id")))
    }

    async fn create(
        &self,
        object: &str,
        key: &str,
        mut properties: Map<String, Value>,
        contact: Option<&str>,
        association: u32,
    ) -> Result<WriteRef, CrmError> {
        if let Some(id) = self.find_by_key(object, key).await? {
            return Ok(WriteRef {
                system: self.api.system().to_string(),
                id,
                existing: true,
            });
        }
        properties.insert(self.config.key_property.clone(), json!(key));
        let mut body = json!({ "properties": properties });
        if let Some(contact) = contact {
            body["associations"] = json!([{
                "to": {"id": contact},
                "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": association}]
            }]);
        }
        let reply = self
            .api
            .call(
                Method::POST,
                &format!("/crm/v3/objects/{object}"),
                &[],
                Some(&body),
                &[],
                &[],
            )
            .await?;
        let id = text(&reply.body, "id")
            .ok_or_else(|| self.api.protocol(format!("created {object} without an id")))?;
        Ok(WriteRef {
            system: self.api.system().to_string(),
            id,
            existing: false,
        })
    }
}

fn priority(p: Priority) -> &'static str {
    match p {
        Priority::Low => "LOW",
        Priority::Normal => "MEDIUM",
        Priority::High | Priority::Urgent => "HIGH",
    }
}

#[async_trait]
impl Connector for HubSpot {
    fn system(&self) -> &str {
        self.api.system()
    }

    async fn find_customer_by_phone(&self, phone: &E164) -> Result<Option<Customer>, CrmError> {
        // Filter groups are ORed: any phone property equal to the number.
        let groups: Vec<Value> = self
            .config
            .phone_properties
            .iter()
            .map(|p| json!({"filters": [{"propertyName": p, "operator": "EQ", "value": phone.as_str()}]}))
            .collect();
        let body = json!({"filterGroups": groups, "properties": self.properties(), "limit": 10});
        let reply = self
            .api
            .call(
                Method::POST,
                "/crm/v3/objects/contacts/search",
                &[],
                Some(&body),
                &[],
                &[],
            )
            .await?;
        let results = reply
            .body
            .get("results")
            .and_then(Value::as_array)
            .ok_or_else(|| self.api.protocol("search reply has no `results` list"))?;
        Ok(results.iter().find_map(|r| self.customer(r)))
    }

    async fn get_customer(&self, id: &str) -> Result<Option<Customer>, CrmError> {
        let path = format!(
            "/crm/v3/objects/contacts/{}",
            percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC)
        );
        let props = self.properties().join(",");
        let reply = self
            .api
            .call(
                Method::GET,
                &path,
                &[("properties", &props)],
                None,
                &[],
                &[404],
            )
            .await?;
        if reply.status == 404 {
            return Ok(None);
        }
        self.customer(&reply.body)
            .map(Some)
            .ok_or_else(|| self.api.protocol("contact without id or properties"))
    }

    async fn create_ticket(&self, t: &NewTicket, key: &str) -> Result<WriteRef, CrmError> {
        let mut p = Map::new();
        p.insert("subject".into(), json!(t.subject));
        p.insert("content".into(), json!(t.body));
        p.insert("hs_pipeline".into(), json!(self.config.ticket_pipeline));
        p.insert("hs_pipeline_stage".into(), json!(self.config.ticket_stage));
        p.insert("hs_ticket_priority".into(), json!(priority(t.priority)));
        self.overrides
            .apply(Operation::CreateTicket, &context::ticket(t, key), &mut p);
        self.create(
            "tickets",
            key,
            p,
            t.customer_id.as_deref(),
            TICKET_TO_CONTACT,
        )
        .await
    }

    async fn log_call(&self, c: &CallLog, key: &str) -> Result<WriteRef, CrmError> {
        let mut p = Map::new();
        p.insert(
            "hs_timestamp".into(),
            json!(datetime::rfc3339_ms(c.started_at_ms)),
        );
        p.insert("hs_call_title".into(), json!(super::call_text::subject(c)));
        p.insert("hs_call_body".into(), json!(super::call_text::body(c)));
        // HubSpot wants milliseconds, as a string property.
        p.insert(
            "hs_call_duration".into(),
            json!(((c.ended_at_ms - c.started_at_ms).max(0)).to_string()),
        );
        p.insert("hs_call_direction".into(), json!("INBOUND"));
        p.insert("hs_call_status".into(), json!("COMPLETED"));
        put(&mut p, "hs_call_from_number", c.caller.clone());
        put(&mut p, "hs_call_to_number", c.callee.clone());
        put(&mut p, "hs_call_recording_url", c.recording.clone());
        self.overrides
            .apply(Operation::LogCall, &context::call(c, key), &mut p);
        self.create("calls", key, p, c.customer_id.as_deref(), CALL_TO_CONTACT)
            .await
    }

    async fn create_task(&self, t: &NewTask, key: &str) -> Result<WriteRef, CrmError> {
        let mut p = Map::new();
        let due = t
            .due
            .as_ref()
            .map(|d| format!("{d}T09:00:00.000Z"))
            .unwrap_or_else(|| datetime::rfc3339_ms(datetime::now_ms()));
        p.insert("hs_timestamp".into(), json!(due));
        p.insert("hs_task_subject".into(), json!(t.subject));
        p.insert("hs_task_body".into(), json!(t.body));
        p.insert("hs_task_status".into(), json!("NOT_STARTED"));
        p.insert("hs_task_priority".into(), json!("MEDIUM"));
        p.insert("hs_task_type".into(), json!("CALL"));
        put(&mut p, "hubspot_owner_id", t.assignee.clone());
        self.overrides
            .apply(Operation::CreateTask, &context::task(t, key), &mut p);
        self.create("tasks", key, p, t.customer_id.as_deref(), TASK_TO_CONTACT)
            .await
    }
}

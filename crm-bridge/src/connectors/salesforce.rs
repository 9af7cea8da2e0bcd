//! Salesforce over its REST API: callers found with a SOSL search of phone
//! fields, the call log written as a completed `Task`, tickets as `Case`s,
//! follow-ups as open `Task`s.
//!
//! Writes are upserts on an External ID field (`PATCH
//! /sobjects/Task/<field>/<key>`), Salesforce's own idempotent create: the
//! first delivery creates the record (201), a repeat finds it (200). The
//! org needs one text field marked External ID on Task and Case
//! (`Voxbridge_Key__c` by default).
//!
//! Requests and replies follow the REST API Developer Guide:
//! `search` (SOSL), `sobjects/Contact/<id>`, and "Insert or Update (Upsert)
//! a Record Using an External ID".

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

fn default_version() -> String {
    "60.0".into()
}

fn default_external_id() -> String {
    "Voxbridge_Key__c".into()
}

/// The YAML of a `kind: salesforce` system.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SalesforceConfig {
    /// `https://MyDomainName.my.salesforce.com`.
    pub instance_url: String,
    #[serde(default = "default_version")]
    pub api_version: String,
    /// Usually `oauth2_client_credentials` against
    /// `<instance_url>/services/oauth2/token` with `client_auth: body`.
    pub auth: AuthConfig,
    /// External ID text field on Task and Case holding the outbox key.
    #[serde(default = "default_external_id")]
    pub external_id_field: String,
    /// A Contact field holding the service tier, and the value map for it.
    #[serde(default)]
    pub tier_field: Option<String>,
    #[serde(default)]
    pub tier_map: Option<String>,
    #[serde(default)]
    pub value_maps: ValueMaps,
    #[serde(default)]
    pub fields: FieldOverrides,
}

pub struct Salesforce {
    api: ApiClient,
    data: String,
    config: SalesforceConfig,
    overrides: Overrides,
}

impl Salesforce {
    pub fn new(
        system: &str,
        config: &SalesforceConfig,
        timeout: Duration,
    ) -> Result<Salesforce, CrmError> {
        let api = ApiClient::new(system, &config.instance_url, &config.auth, timeout)?;
        let valid_name =
            |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_name(&config.external_id_field)
            || config.tier_field.as_deref().is_some_and(|f| !valid_name(f))
        {
            return Err(CrmError::Invalid {
                system: system.into(),
                message:
                    "field names are letters, digits and `_` (API names such as Voxbridge_Key__c)"
                        .into(),
            });
        }
        if let Some(m) = &config.tier_map {
            if !config.value_maps.contains_key(m) {
                return Err(CrmError::Invalid {
                    system: system.into(),
                    message: format!("tier_map: no value map named `{m}`"),
                });
            }
        }
        Ok(Salesforce {
            data: format!("/services/data/v{}", config.api_version),
            overrides: Overrides::parse(system, &config.fields, &config.value_maps)?,
            api,
            config: config.clone(),
        })
    }

    fn contact_fields(&self) -> String {
        let mut f = vec!["Id", "Name", "Phone", "MobilePhone", "Email"];
        if let Some(t) = &self.config.tier_field {
            f.push(t);
        }
        f.join(", ")
    }

    fn customer(&self, r: &Value) -> Option<Customer> {
        let tier = self
            .config
            .tier_field
            .as_deref()
            .and_then(|f| text(r, f))
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
            id: text(r, "Id")?,
            system: self.api.system().to_string(),
            name: text(r, "Name").unwrap_or_default(),
            phone: text(r, "Phone").or_else(|| text(r, "MobilePhone")),
            email: text(r, "Email"),
            tier,
            ..Customer::default()
        })
    }

    /// Create or find the record whose external id is `key`.
    async fn upsert(
        &self,
        object: &str,
        key: &str,
        body: Map<String, Value>,
    ) -> Result<WriteRef, CrmError> {
        let path = format!(
            "{}/sobjects/{object}/{}/{}",
            self.data,
            self.config.external_id_field,
            percent_encoding::utf8_percent_encode(key, percent_encoding::NON_ALPHANUMERIC)
        );
        let reply = self
            .api
            .call(
                Method::PATCH,
                &path,
                &[],
                Some(&Value::Object(body)),
                &[],
                &[],
            )
            .await?;
        // 201 created; 200 (API 46.0+) or 204 (older) when it already existed.
        let id = reply
            .body
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| key.to_string());
        if reply.body.get("success") == Some(&Value::Bool(false)) {
            return Err(self.api.protocol(format!(
                "upsert of {object} failed: {}",
                reply.body["errors"]
            )));
        }
        Ok(WriteRef {
            system: self.api.system().to_string(),
            id,
            existing: reply.status != 201,
        })
    }
}

fn priority(p: Priority) -> &'static str {
    match p {
        Priority::Low => "Low",
        Priority::Normal => "Medium",
        Priority::High | Priority::Urgent => "High",
    }
}

/// SOSL reserved characters are escaped with a backslash.
fn sosl_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if "?&|!{}[]()^~*:\\\"'+-".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[async_trait]
impl Connector for Salesforce {
    fn system(&self) -> &str {
        self.api.system()
    }

    async fn find_customer_by_phone(&self, phone: &E164) -> Result<Option<Customer>, CrmError> {
        // Search the national number, which appears in every way of writing
        // it; then keep the records whose stored number normalises to the
        // caller's.
        let national = phone
            .country()
            .and_then(|c| phone.national(c))
            .unwrap_or(phone.digits());
        let sosl = format!(
            "FIND {{{}}} IN PHONE FIELDS RETURNING Contact({}) LIMIT 20",
            sosl_escape(national),
            self.contact_fields()
        );
        let reply = self
            .api
            .call(
                Method::GET,
                &format!("{}/search/", self.data),
                &[("q", &sosl)],
                None,
                &[],
                &[],
            )
            .await?;
        let records = reply
            .body
            .get("searchRecords")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                self.api
                    .protocol("search reply has no `searchRecords` list")
            })?;
        Ok(records
            .iter()
            .filter(|r| {
                ["Phone", "MobilePhone"]
                    .iter()
                    .any(|f| text(r, f).is_some_and(|p| phone.matches(&p)))
            })
            .find_map(|r| self.customer(r)))
    }

    async fn get_customer(&self, id: &str) -> Result<Option<Customer>, CrmError> {
        let path = format!(
            "{}/sobjects/Contact/{}",
            self.data,
            percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC)
        );
        let fields = self.contact_fields().replace(' ', "");
        let reply = self
            .api
            .call(
                Method::GET,
                &path,
                &[("fields", &fields)],
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
            .ok_or_else(|| self.api.protocol("Contact record without Id"))
    }

    async fn create_ticket(&self, t: &NewTicket, key: &str) -> Result<WriteRef, CrmError> {
        let mut f = Map::new();
        f.insert("Subject".into(), json!(t.subject));
        f.insert("Description".into(), json!(t.body));
        f.insert("Priority".into(), json!(priority(t.priority)));
        f.insert("Origin".into(), json!("Phone"));
        f.insert("Status".into(), json!("New"));
        put(&mut f, "ContactId", t.customer_id.clone());
        put(&mut f, "SuppliedPhone", t.phone.clone());
        put(&mut f, "SuppliedEmail", t.email.clone());
        self.overrides
            .apply(Operation::CreateTicket, &context::ticket(t, key), &mut f);
        self.upsert("Case", key, f).await
    }

    async fn log_call(&self, c: &CallLog, key: &str) -> Result<WriteRef, CrmError> {
        let mut f = Map::new();
        f.insert("Subject".into(), json!(super::call_text::subject(c)));
        let description = super::call_text::body(c);
        f.insert("Description".into(), json!(description));
        f.insert(
            "ActivityDate".into(),
            json!(datetime::date(c.started_at_ms)),
        );
        f.insert("Status".into(), json!("Completed"));
        f.insert("Priority".into(), json!("Normal"));
        f.insert("TaskSubtype".into(), json!("Call"));
        f.insert("CallType".into(), json!("Inbound"));
        f.insert("CallDurationInSeconds".into(), json!(c.duration_secs()));
        put(&mut f, "CallDisposition", Some(c.disposition.clone()));
        put(&mut f, "WhoId", c.customer_id.clone());
        self.overrides
            .apply(Operation::LogCall, &context::call(c, key), &mut f);
        self.upsert("Task", key, f).await
    }

    async fn create_task(&self, t: &NewTask, key: &str) -> Result<WriteRef, CrmError> {
        let mut f = Map::new();
        f.insert("Subject".into(), json!(t.subject));
        f.insert("Description".into(), json!(t.body));
        f.insert("Status".into(), json!("Not Started"));
        f.insert("Priority".into(), json!("Normal"));
        put(&mut f, "ActivityDate", t.due.clone());
        put(&mut f, "WhoId", t.customer_id.clone());
        put(&mut f, "OwnerId", t.assignee.clone());
        self.overrides
            .apply(Operation::CreateTask, &context::task(t, key), &mut f);
        self.upsert("Task", key, f).await
    }
}

//! The `crm:` configuration: which systems exist, which operation goes to
//! which, and the tuning of the request path and the outbox. It builds the
//! [`Bridge`] and opens the [`Outbox`].
//!
//! Unknown keys are errors, reported with line and column, like the rest of
//! voxbridge's configuration.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use thiserror::Error;

use crate::bridge::{Bridge, Timeouts};
use crate::connector::{Connector, Operation};
use crate::connectors::embedded::EmbeddedCrm;
use crate::connectors::hubspot::{HubSpot, HubSpotConfig};
use crate::connectors::odoo::{Odoo, OdooConfig};
use crate::connectors::rest::{RestConfig, RestConnector};
use crate::connectors::rt::{Rt, RtConfig};
use crate::connectors::salesforce::{Salesforce, SalesforceConfig};
use crate::connectors::tryton::{Tryton, TrytonConfig};
use crate::connectors::zendesk::{Zendesk, ZendeskConfig};
use crate::error::CrmError;
use crate::outbox::{Outbox, OutboxConfig, OutboxError};
use crate::phone::Country;
use crate::resilience::breaker::BreakerConfig;
use crate::resilience::cache::CacheConfig;
use crate::resilience::retry::RetryPolicy;
use crate::storage::StorageConfig;

/// What is wrong with a CRM configuration.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{path}: cannot read: {message}")]
    Read { path: String, message: String },
    #[error("{path}:{line}:{column}: {message}")]
    Syntax {
        path: String,
        line: u64,
        column: u64,
        message: String,
    },
    #[error("crm.{key}: {message}")]
    Invalid { key: String, message: String },
    #[error("crm.systems.{system}: {source}")]
    System {
        system: String,
        #[source]
        source: CrmError,
    },
    #[error("crm.outbox: {0}")]
    Outbox(#[from] OutboxError),
}

/// The embedded SQLite CRM.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddedConfig {
    /// The database file (created on first start).
    #[serde(default = "default_embedded_path")]
    pub path: PathBuf,
    /// Folder of CSV files loaded on first start.
    #[serde(default)]
    pub seed: Option<PathBuf>,
}

fn default_embedded_path() -> PathBuf {
    PathBuf::from("var/crm.sqlite")
}

/// One system, by kind.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SystemConfig {
    Embedded(EmbeddedConfig),
    Rest(Box<RestConfig>),
    Salesforce(Box<SalesforceConfig>),
    Hubspot(Box<HubSpotConfig>),
    Zendesk(Box<ZendeskConfig>),
    Odoo(Box<OdooConfig>),
    Tryton(Box<TrytonConfig>),
    Rt(Box<RtConfig>),
}

/// The whole `crm:` block.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CrmConfig {
    /// ISO country in which national numbers are read (`CN`, `US`, `GB`…).
    pub default_country: String,
    pub systems: BTreeMap<String, SystemConfig>,
    /// Operation → system. Unrouted operations go to `default_system`.
    pub routes: BTreeMap<Operation, String>,
    /// The system for operations not in `routes` (not needed with one
    /// system).
    pub default_system: Option<String>,
    /// Time budget per operation.
    #[serde(deserialize_with = "durations")]
    pub timeouts: BTreeMap<Operation, Duration>,
    pub retry: RetryPolicy,
    pub breaker: BreakerConfig,
    pub cache: CacheConfig,
    pub outbox: OutboxConfig,
    /// Where the outbox lives: its SQLite file (default) or a shared
    /// PostgreSQL (`storage.url`).
    pub storage: StorageConfig,
}

impl Default for CrmConfig {
    /// The embedded CRM seeded from `fixtures/crm`: a bot that works on a
    /// fresh machine.
    fn default() -> Self {
        let mut systems = BTreeMap::new();
        systems.insert(
            "crm".to_string(),
            SystemConfig::Embedded(EmbeddedConfig {
                path: default_embedded_path(),
                seed: Some(PathBuf::from("fixtures/crm")),
            }),
        );
        CrmConfig {
            default_country: "CN".into(),
            systems,
            routes: BTreeMap::new(),
            default_system: None,
            timeouts: BTreeMap::new(),
            retry: RetryPolicy::default(),
            breaker: BreakerConfig::default(),
            cache: CacheConfig::default(),
            outbox: OutboxConfig::default(),
            storage: StorageConfig::default(),
        }
    }
}

fn durations<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<Operation, Duration>, D::Error> {
    let raw = BTreeMap::<Operation, serde_json::Value>::deserialize(d)?;
    raw.into_iter()
        .map(|(op, v)| {
            let parsed = match &v {
                serde_json::Value::Number(n) => n
                    .as_u64()
                    .ok_or_else(|| format!("{op}: not a duration"))
                    .and_then(crate::resilience::millis::from_number),
                serde_json::Value::String(s) => crate::resilience::millis::parse(s),
                _ => Err(format!("{op}: not a duration")),
            };
            parsed.map(|d| (op, d)).map_err(serde::de::Error::custom)
        })
        .collect()
}

impl CrmConfig {
    /// Parse YAML text (`path` names it in errors).
    pub fn from_yaml(text: &str, path: &str) -> Result<CrmConfig, ConfigError> {
        serde_saphyr::from_str::<CrmConfig>(text).map_err(|e| {
            let (line, column) = e
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((0, 0));
            ConfigError::Syntax {
                path: path.to_string(),
                line,
                column,
                message: e.to_string().lines().next().unwrap_or("").to_string(),
            }
        })
    }

    /// Read and parse a YAML file holding only the `crm:` block's content.
    pub fn load(path: &Path) -> Result<CrmConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        CrmConfig::from_yaml(&text, &path.display().to_string())
    }

    pub fn country(&self) -> Result<&'static Country, ConfigError> {
        Country::by_iso(&self.default_country).map_err(|e| ConfigError::Invalid {
            key: "default_country".into(),
            message: e.to_string(),
        })
    }

    /// The longest budget of any operation: the HTTP clients' backstop.
    fn http_timeout(&self, timeouts: &Timeouts) -> Duration {
        Operation::ALL
            .iter()
            .map(|op| timeouts.get(*op))
            .max()
            .unwrap_or(Duration::from_secs(5))
            + Duration::from_secs(1)
    }

    /// Build the connectors (reading their credentials) and the bridge.
    pub fn build_bridge(&self) -> Result<Bridge, ConfigError> {
        let country = self.country()?;
        let mut timeouts = Timeouts::default();
        for (op, d) in &self.timeouts {
            timeouts.set(*op, *d);
        }
        let http_timeout = self.http_timeout(&timeouts);
        if self.systems.is_empty() {
            return Err(ConfigError::Invalid {
                key: "systems".into(),
                message: "no system configured".into(),
            });
        }
        let mut builder = Bridge::builder(country)
            .timeouts(timeouts)
            .retry(self.retry)
            .cache(self.cache);
        for (name, system) in &self.systems {
            let connector =
                build_connector(name, system, country, http_timeout).map_err(|source| {
                    ConfigError::System {
                        system: name.clone(),
                        source,
                    }
                })?;
            builder = builder.system(connector, self.breaker);
        }
        if let Some(d) = &self.default_system {
            if !self.systems.contains_key(d) {
                return Err(ConfigError::Invalid {
                    key: "default_system".into(),
                    message: format!("`{d}` is not among the systems"),
                });
            }
        }
        for op in Operation::ALL {
            let target = self.routes.get(&op).or(self.default_system.as_ref());
            if let Some(system) = target {
                if !self.systems.contains_key(system) {
                    return Err(ConfigError::Invalid {
                        key: format!("routes.{op}"),
                        message: format!("`{system}` is not among the systems"),
                    });
                }
                builder = builder.route(op, system);
            }
        }
        builder.build().map_err(|e| ConfigError::Invalid {
            key: "routes".into(),
            message: e.to_string(),
        })
    }

    /// Open the outbox (in PostgreSQL when `storage.url` names one).
    pub fn open_outbox(&self) -> Result<Outbox, ConfigError> {
        Ok(Outbox::open_with(self.outbox.clone(), &self.storage)?)
    }
}

fn build_connector(
    name: &str,
    system: &SystemConfig,
    country: &'static Country,
    http_timeout: Duration,
) -> Result<Arc<dyn Connector>, CrmError> {
    Ok(match system {
        SystemConfig::Embedded(c) => Arc::new(EmbeddedCrm::open(
            name,
            &c.path,
            c.seed.as_deref(),
            country,
        )?),
        SystemConfig::Rest(c) => Arc::new(RestConnector::new(name, c, http_timeout)?),
        SystemConfig::Salesforce(c) => Arc::new(Salesforce::new(name, c, http_timeout)?),
        SystemConfig::Hubspot(c) => Arc::new(HubSpot::new(name, c, http_timeout)?),
        SystemConfig::Zendesk(c) => Arc::new(Zendesk::new(name, c, http_timeout)?),
        SystemConfig::Odoo(c) => Arc::new(Odoo::new(name, c, http_timeout)?),
        SystemConfig::Tryton(c) => Arc::new(Tryton::new(name, c, http_timeout)?),
        SystemConfig::Rt(c) => Arc::new(Rt::new(name, c, http_timeout)?),
    })
}

//! The bridge: what the engine calls. It routes each operation to the system
//! configured for it and wraps every call in that system's guard (time
//! budget, retries for reads, circuit breaker); caller lookups also go
//! through the profile cache and the coalescer.
//!
//! A lookup never outlives its budget: when the CRM is slow, down or
//! answering nonsense the caller gets [`LookupFailed`] in time for the dialog
//! to speak its fallback.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;

use crate::connector::{BoxFuture, Connector, Operation};
use crate::error::CrmError;
use crate::mask::mask_phone;
use crate::model::{
    CallLog, Customer, NewTask, NewTicket, Order, ProductQuery, StockLevel, Write, WriteRef,
};
use crate::phone::{Country, PhoneError, E164};
use crate::resilience::breaker::{BreakerConfig, BreakerState};
use crate::resilience::cache::{CacheConfig, TtlCache};
use crate::resilience::retry::RetryPolicy;
use crate::resilience::{SystemGuard, SystemStatsSnapshot};

/// Why a caller lookup gave no answer. The dialog treats both the same
/// (speak the fallback); the distinction is for logs and metrics.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum LookupFailed {
    /// The caller id is not a phone number (withheld, `anonymous`, garbage).
    #[error("caller id {masked} is not a usable phone number: {source}")]
    BadNumber {
        masked: String,
        #[source]
        source: PhoneError,
    },
    /// The CRM did not answer usefully in time.
    #[error(transparent)]
    Crm(#[from] CrmError),
}

/// Configuration errors found while assembling a bridge.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum BuildError {
    #[error("operation `{op}` is routed to `{system}`, which is not a configured system")]
    UnknownSystem { op: Operation, system: String },
    #[error("system `{0}` is configured twice")]
    DuplicateSystem(String),
}

/// Time budgets per operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeouts {
    budgets: HashMap<Operation, Duration>,
}

impl Default for Timeouts {
    fn default() -> Self {
        use Operation::*;
        let budgets = [
            // The profile should be ready before the 200 OK.
            (FindCustomer, 400),
            (GetCustomer, 800),
            (ListOrders, 1500),
            (OrderStatus, 1500),
            (Stock, 1500),
            // Writes normally go through the outbox, which is not in a hurry.
            (CreateTicket, 5000),
            (LogCall, 5000),
            (CreateTask, 5000),
        ]
        .into_iter()
        .map(|(op, ms)| (op, Duration::from_millis(ms)))
        .collect();
        Timeouts { budgets }
    }
}

impl Timeouts {
    pub fn get(&self, op: Operation) -> Duration {
        self.budgets
            .get(&op)
            .copied()
            .unwrap_or(Duration::from_secs(2))
    }

    pub fn set(&mut self, op: Operation, budget: Duration) {
        self.budgets.insert(op, budget);
    }
}

/// Lookup counters.
#[derive(Debug, Default)]
struct LookupStats {
    lookups: AtomicU64,
    cache_hits: AtomicU64,
    coalesced: AtomicU64,
    failed: AtomicU64,
}

/// A copy of the bridge's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BridgeStats {
    pub lookups: u64,
    pub cache_hits: u64,
    pub coalesced: u64,
    pub lookups_failed: u64,
    pub systems: Vec<(String, BreakerState, SystemStatsSnapshot)>,
}

struct Route {
    connector: Arc<dyn Connector>,
    guard: Arc<SystemGuard>,
}

/// Assembles a [`Bridge`].
pub struct BridgeBuilder {
    default_country: &'static Country,
    systems: Vec<(String, Arc<dyn Connector>, BreakerConfig)>,
    routes: Vec<(Operation, String)>,
    timeouts: Timeouts,
    retry: RetryPolicy,
    cache: CacheConfig,
}

impl BridgeBuilder {
    /// Add a system. Its name is the connector's [`Connector::system`].
    pub fn system(mut self, connector: Arc<dyn Connector>, breaker: BreakerConfig) -> Self {
        self.systems
            .push((connector.system().to_string(), connector, breaker));
        self
    }

    /// Send `op` to the system named `system`.
    pub fn route(mut self, op: Operation, system: &str) -> Self {
        self.routes.push((op, system.to_string()));
        self
    }

    pub fn timeout(mut self, op: Operation, budget: Duration) -> Self {
        self.timeouts.set(op, budget);
        self
    }

    pub fn timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn cache(mut self, cache: CacheConfig) -> Self {
        self.cache = cache;
        self
    }

    /// With a single system, operations without a route go to it.
    pub fn build(self) -> Result<Bridge, BuildError> {
        let mut guards: HashMap<String, (Arc<dyn Connector>, Arc<SystemGuard>)> = HashMap::new();
        let mut order = Vec::new();
        for (name, connector, breaker) in self.systems {
            if guards.contains_key(&name) {
                return Err(BuildError::DuplicateSystem(name));
            }
            let guard = Arc::new(SystemGuard::new(&name, breaker));
            order.push(name.clone());
            guards.insert(name, (connector, guard));
        }
        let mut routes = HashMap::new();
        for (op, system) in self.routes {
            let (connector, guard) =
                guards
                    .get(&system)
                    .ok_or_else(|| BuildError::UnknownSystem {
                        op,
                        system: system.clone(),
                    })?;
            routes.insert(
                op,
                Route {
                    connector: Arc::clone(connector),
                    guard: Arc::clone(guard),
                },
            );
        }
        // One system does everything; with several, each operation must be
        // routed (an unrouted one answers `NotConfigured`).
        if let (1, Some((connector, guard))) =
            (order.len(), order.first().and_then(|n| guards.get(n)))
        {
            for op in Operation::ALL {
                routes.entry(op).or_insert_with(|| Route {
                    connector: Arc::clone(connector),
                    guard: Arc::clone(guard),
                });
            }
        }
        let guards = order
            .iter()
            .filter_map(|n| guards.get(n).map(|(_, g)| Arc::clone(g)))
            .collect();
        Ok(Bridge {
            default_country: self.default_country,
            routes,
            guards,
            timeouts: self.timeouts,
            retry: self.retry,
            cache: TtlCache::new(self.cache),
            stats: LookupStats::default(),
        })
    }
}

/// The request path to the CRMs.
pub struct Bridge {
    default_country: &'static Country,
    routes: HashMap<Operation, Route>,
    guards: Vec<Arc<SystemGuard>>,
    timeouts: Timeouts,
    retry: RetryPolicy,
    cache: TtlCache<E164, Customer>,
    stats: LookupStats,
}

impl Bridge {
    /// Start assembling a bridge that reads national numbers in
    /// `default_country`.
    pub fn builder(default_country: &'static Country) -> BridgeBuilder {
        BridgeBuilder {
            default_country,
            systems: Vec::new(),
            routes: Vec::new(),
            timeouts: Timeouts::default(),
            retry: RetryPolicy::default(),
            cache: CacheConfig::default(),
        }
    }

    /// Normalise a number as typed or as the trunk sent it.
    pub fn normalise(&self, raw: &str) -> Result<E164, PhoneError> {
        E164::parse(raw, self.default_country)
    }

    pub fn default_country(&self) -> &'static Country {
        self.default_country
    }

    /// Who is calling from `raw` (a caller id, SIP URI or typed number)?
    /// Cached, coalesced, and bounded by the `find_customer` budget.
    pub async fn lookup_caller(&self, raw: &str) -> Result<Option<Customer>, LookupFailed> {
        let phone = self
            .normalise(raw)
            .map_err(|source| LookupFailed::BadNumber {
                masked: mask_phone(raw),
                source,
            })?;
        Ok(self.find_customer(&phone).await?)
    }

    /// [`Bridge::lookup_caller`] for a number already in E.164.
    pub async fn find_customer(&self, phone: &E164) -> Result<Option<Customer>, CrmError> {
        self.stats.lookups.fetch_add(1, Ordering::Relaxed);
        if let Some(hit) = self.cache.get(phone).await {
            self.stats.cache_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(hit);
        }
        let route = self.route(Operation::FindCustomer)?;
        let budget = self.timeouts.get(Operation::FindCustomer);
        // Concurrent misses of one number share this load; a success is
        // cached (found or not), a failure is not.
        let (result, led) = self
            .cache
            .get_or_load(phone.clone(), async {
                route
                    .guard
                    .read(budget, &self.retry, || {
                        route.connector.find_customer_by_phone(phone)
                    })
                    .await
            })
            .await;
        if !led {
            self.stats.coalesced.fetch_add(1, Ordering::Relaxed);
        }
        if result.is_err() {
            self.stats.failed.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    /// Forget a cached profile (after the CRM record changed).
    pub async fn invalidate(&self, phone: &E164) {
        self.cache.invalidate(phone).await;
    }

    pub async fn customer(&self, id: &str) -> Result<Option<Customer>, CrmError> {
        self.read(Operation::GetCustomer, |c| c.get_customer(id))
            .await
    }

    pub async fn orders(&self, customer_id: &str) -> Result<Vec<Order>, CrmError> {
        self.read(Operation::ListOrders, |c| c.list_orders(customer_id))
            .await
    }

    pub async fn order_status(&self, order_id: &str) -> Result<Option<Order>, CrmError> {
        self.read(Operation::OrderStatus, |c| c.order_status(order_id))
            .await
    }

    pub async fn stock(&self, query: &ProductQuery) -> Result<Vec<StockLevel>, CrmError> {
        self.read(Operation::Stock, |c| c.stock(query)).await
    }

    /// The customers a campaign list query names.
    pub async fn list_customers(
        &self,
        query: &crate::model::CustomerQuery,
    ) -> Result<Vec<Customer>, CrmError> {
        self.read(Operation::ListCustomers, |c| c.list_customers(query))
            .await
    }

    /// Open a ticket now (when the dialog wants to read its number out);
    /// otherwise enqueue it in the outbox.
    pub async fn create_ticket(&self, t: &NewTicket, key: &str) -> Result<WriteRef, CrmError> {
        self.write(Operation::CreateTicket, |c| c.create_ticket(t, key))
            .await
    }

    pub async fn log_call(&self, call: &CallLog, key: &str) -> Result<WriteRef, CrmError> {
        self.write(Operation::LogCall, |c| c.log_call(call, key))
            .await
    }

    pub async fn create_task(&self, t: &NewTask, key: &str) -> Result<WriteRef, CrmError> {
        self.write(Operation::CreateTask, |c| c.create_task(t, key))
            .await
    }

    /// Deliver one outbox write to the system configured for its kind.
    pub async fn deliver(&self, write: &Write, key: &str) -> Result<WriteRef, CrmError> {
        match write {
            Write::CallLog(c) => self.log_call(c, key).await,
            Write::Ticket(t) => self.create_ticket(t, key).await,
            Write::Task(t) => self.create_task(t, key).await,
        }
    }

    /// The system a write of this kind goes to (the outbox records it).
    pub fn system_for(&self, write: &Write) -> Option<&str> {
        let op = match write {
            Write::CallLog(_) => Operation::LogCall,
            Write::Ticket(_) => Operation::CreateTicket,
            Write::Task(_) => Operation::CreateTask,
        };
        self.routes.get(&op).map(|r| r.connector.system())
    }

    pub fn stats(&self) -> BridgeStats {
        let s = &self.stats;
        BridgeStats {
            lookups: s.lookups.load(Ordering::Relaxed),
            cache_hits: s.cache_hits.load(Ordering::Relaxed),
            coalesced: s.coalesced.load(Ordering::Relaxed),
            lookups_failed: s.failed.load(Ordering::Relaxed),
            systems: self
                .guards
                .iter()
                .map(|g| (g.system().to_string(), g.breaker_state(), g.stats()))
                .collect(),
        }
    }

    fn route(&self, op: Operation) -> Result<&Route, CrmError> {
        self.routes.get(&op).ok_or(CrmError::NotConfigured(op))
    }

    async fn read<'a, T, F>(&'a self, op: Operation, call: F) -> Result<T, CrmError>
    where
        F: Fn(&'a dyn Connector) -> BoxFuture<'a, Result<T, CrmError>>,
    {
        let route = self.route(op)?;
        route
            .guard
            .read(self.timeouts.get(op), &self.retry, || {
                call(route.connector.as_ref())
            })
            .await
    }

    async fn write<'a, T, F>(&'a self, op: Operation, call: F) -> Result<T, CrmError>
    where
        F: FnOnce(&'a dyn Connector) -> BoxFuture<'a, Result<T, CrmError>>,
    {
        let route = self.route(op)?;
        route
            .guard
            .write(self.timeouts.get(op), call(route.connector.as_ref()))
            .await
    }
}

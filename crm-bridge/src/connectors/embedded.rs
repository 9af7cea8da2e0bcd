//! The embedded CRM: customers, orders, products and stock in a local
//! SQLite file, seeded from `fixtures/crm/*.csv` on first start.
//!
//! It is what the default set-up and the demo use, so the bot can greet a
//! caller by name and answer order and stock questions on a machine with no
//! CRM at all. Call logs, tickets and tasks written to it are kept in the
//! same file, unique by idempotency key.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};

use crate::connector::Connector;
use crate::datetime::now_ms;
use crate::error::CrmError;
use crate::fuzzy;
use crate::model::{
    CallLog, Customer, CustomerQuery, NewTask, NewTicket, Order, OrderLine, ProductQuery,
    StockLevel, WriteRef,
};
use crate::phone::{Country, E164};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS customers(
    id TEXT PRIMARY KEY, name TEXT NOT NULL, phone TEXT, phone_e164 TEXT,
    email TEXT, tier TEXT, language TEXT, city TEXT);
CREATE INDEX IF NOT EXISTS customers_phone ON customers(phone_e164);
CREATE TABLE IF NOT EXISTS products(
    sku TEXT PRIMARY KEY COLLATE NOCASE, name TEXT NOT NULL,
    aliases TEXT NOT NULL DEFAULT '', quantity REAL NOT NULL, forecast REAL);
CREATE TABLE IF NOT EXISTS orders(
    id TEXT PRIMARY KEY COLLATE NOCASE, customer_id TEXT, status TEXT NOT NULL,
    placed_at TEXT, total TEXT, currency TEXT);
CREATE INDEX IF NOT EXISTS orders_customer ON orders(customer_id);
CREATE TABLE IF NOT EXISTS order_lines(
    order_id TEXT NOT NULL COLLATE NOCASE, sku TEXT, name TEXT NOT NULL, quantity REAL NOT NULL);
CREATE INDEX IF NOT EXISTS order_lines_order ON order_lines(order_id);
CREATE TABLE IF NOT EXISTS call_logs(
    id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, call_id TEXT NOT NULL,
    customer_id TEXT, caller TEXT, disposition TEXT, record TEXT NOT NULL,
    created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS tickets(
    id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, queue TEXT, priority TEXT NOT NULL,
    subject TEXT NOT NULL, body TEXT NOT NULL, customer_id TEXT, phone TEXT,
    status TEXT NOT NULL DEFAULT 'open', created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS tasks(
    id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, subject TEXT NOT NULL, body TEXT NOT NULL,
    due TEXT, customer_id TEXT, phone TEXT, assignee TEXT, created_at INTEGER NOT NULL);
";

/// How many rows an import loaded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportSummary {
    pub customers: usize,
    pub products: usize,
    pub orders: usize,
    pub order_lines: usize,
}

/// A ticket as stored, for the demo's web pages and for tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTicket {
    pub id: i64,
    pub key: String,
    pub queue: Option<String>,
    pub priority: String,
    pub subject: String,
    pub customer_id: Option<String>,
}

/// The embedded CRM.
pub struct EmbeddedCrm {
    system: String,
    path: PathBuf,
    db: Arc<Mutex<Connection>>,
}

impl EmbeddedCrm {
    /// Open (creating if needed) the database at `path`; on first start,
    /// seed it from the CSV files in `seed_dir`. National phone numbers in
    /// the CSVs without a `country` column value are read in
    /// `default_country`.
    pub fn open(
        system: &str,
        path: &Path,
        seed_dir: Option<&Path>,
        default_country: &Country,
    ) -> Result<EmbeddedCrm, CrmError> {
        let storage = |e: rusqlite::Error| CrmError::Storage {
            system: system.to_string(),
            message: format!("{}: {e}", path.display()),
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| CrmError::Storage {
                system: system.to_string(),
                message: format!("{}: {e}", parent.display()),
            })?;
        }
        let conn = Connection::open(path).map_err(storage)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(storage)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(storage)?;
        conn.execute_batch(SCHEMA).map_err(storage)?;
        let crm = EmbeddedCrm {
            system: system.to_string(),
            path: path.to_path_buf(),
            db: Arc::new(Mutex::new(conn)),
        };
        if let Some(dir) = seed_dir {
            let seeded: Option<String> = crm
                .with_conn(|c| {
                    c.query_row(
                        "SELECT value FROM meta WHERE key = 'seeded_from'",
                        [],
                        |r| r.get(0),
                    )
                    .optional()
                })
                .map_err(storage)?;
            if seeded.is_none() {
                crm.import_dir(dir, default_country)?;
            }
        }
        Ok(crm)
    }

    /// Load `customers.csv`, `products.csv`, `orders.csv` and
    /// `order_lines.csv` from `dir` (each optional), replacing rows with the
    /// same ids. One transaction: a bad row leaves the database unchanged.
    pub fn import_dir(
        &self,
        dir: &Path,
        default_country: &Country,
    ) -> Result<ImportSummary, CrmError> {
        let rows = |name: &str| read_csv(&self.system, &dir.join(name));
        let customers = rows("customers.csv")?;
        let products = rows("products.csv")?;
        let orders = rows("orders.csv")?;
        let lines = rows("order_lines.csv")?;

        let mut prepared_customers = Vec::new();
        for row in &customers {
            let country = match row.get("country").filter(|c| !c.is_empty()) {
                Some(iso) => Country::by_iso(iso).map_err(|e| row.invalid(&self.system, e))?,
                None => default_country,
            };
            let phone = row.get("phone").filter(|p| !p.is_empty());
            let e164 = phone
                .map(|p| E164::parse(p, country))
                .transpose()
                .map_err(|e| row.invalid(&self.system, e))?;
            prepared_customers.push((row, phone, e164));
        }

        let system = self.system.clone();
        let storage = |e: rusqlite::Error| CrmError::Storage {
            system: system.clone(),
            message: format!(
                "{}: import from {}: {e}",
                self.path.display(),
                dir.display()
            ),
        };
        self.with_conn(|c| {
            let tx = c.unchecked_transaction()?;
            for (row, phone, e164) in &prepared_customers {
                tx.execute(
                    "INSERT OR REPLACE INTO customers(id, name, phone, phone_e164, email, tier, language, city)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![
                        row.req("id"),
                        row.req("name"),
                        phone,
                        e164.as_ref().map(E164::as_str),
                        row.opt("email"),
                        row.opt("tier"),
                        row.opt("language"),
                        row.opt("city"),
                    ],
                )?;
            }
            for row in &products {
                tx.execute(
                    "INSERT OR REPLACE INTO products(sku, name, aliases, quantity, forecast)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![
                        row.req("sku"),
                        row.req("name"),
                        row.get("aliases").unwrap_or(""),
                        row.num("quantity").unwrap_or(0.0),
                        row.num("forecast"),
                    ],
                )?;
            }
            for row in &orders {
                tx.execute(
                    "INSERT OR REPLACE INTO orders(id, customer_id, status, placed_at, total, currency)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        row.req("id"),
                        row.opt("customer_id"),
                        row.get("status").unwrap_or("confirmed"),
                        row.opt("placed_at"),
                        row.opt("total"),
                        row.opt("currency"),
                    ],
                )?;
            }
            let order_ids: Vec<&str> = lines.iter().map(|r| r.req("order_id")).collect();
            for id in &order_ids {
                tx.execute("DELETE FROM order_lines WHERE order_id = ?1", [id])?;
            }
            for row in &lines {
                tx.execute(
                    "INSERT INTO order_lines(order_id, sku, name, quantity) VALUES (?1, ?2, ?3, ?4)",
                    params![
                        row.req("order_id"),
                        row.opt("sku"),
                        row.req("name"),
                        row.num("quantity").unwrap_or(1.0),
                    ],
                )?;
            }
            tx.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES ('seeded_from', ?1)",
                [dir.display().to_string()],
            )?;
            tx.commit()
        })
        .map_err(storage)?;
        Ok(ImportSummary {
            customers: customers.len(),
            products: products.len(),
            orders: orders.len(),
            order_lines: lines.len(),
        })
    }

    /// Tickets written so far, oldest first.
    pub async fn tickets(&self) -> Result<Vec<StoredTicket>, CrmError> {
        self.run(|c| {
            let mut st = c.prepare(
                "SELECT id, key, queue, priority, subject, customer_id FROM tickets ORDER BY id",
            )?;
            let rows = st.query_map([], |r| {
                Ok(StoredTicket {
                    id: r.get(0)?,
                    key: r.get(1)?,
                    queue: r.get(2)?,
                    priority: r.get(3)?,
                    subject: r.get(4)?,
                    customer_id: r.get(5)?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    /// Call logs written so far, oldest first, with their keys.
    pub async fn call_logs(&self) -> Result<Vec<(String, CallLog)>, CrmError> {
        let rows: Vec<(String, String)> = self
            .run(|c| {
                let mut st = c.prepare("SELECT key, record FROM call_logs ORDER BY id")?;
                let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
                rows.collect()
            })
            .await?;
        rows.into_iter()
            .map(|(key, json)| {
                serde_json::from_str(&json)
                    .map(|log| (key, log))
                    .map_err(|e| CrmError::Storage {
                        system: self.system.clone(),
                        message: format!("stored call log is not valid JSON: {e}"),
                    })
            })
            .collect()
    }

    fn with_conn<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        // A panic while holding the lock cannot leave SQLite inconsistent
        // (transactions roll back), so a poisoned lock is still usable.
        let conn = self.db.lock().unwrap_or_else(|p| p.into_inner());
        f(&conn)
    }

    /// Run a query on the blocking pool: SQLite calls can wait on the disk.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, CrmError> {
        let db = Arc::clone(&self.db);
        let system = self.system.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let conn = db.lock().unwrap_or_else(|p| p.into_inner());
            f(&conn)
        })
        .await;
        match joined {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(CrmError::Storage {
                system,
                message: e.to_string(),
            }),
            Err(e) => Err(CrmError::Storage {
                system,
                message: format!("database task failed: {e}"),
            }),
        }
    }

    async fn write_once(
        &self,
        insert: &'static str,
        table: &'static str,
        key: &str,
        values: Vec<rusqlite::types::Value>,
    ) -> Result<WriteRef, CrmError> {
        let key_owned = key.to_string();
        let (id, inserted) = self
            .run(move |c| {
                let mut all = vec![rusqlite::types::Value::Text(key_owned.clone())];
                all.extend(values);
                let inserted = c.execute(insert, rusqlite::params_from_iter(all))? == 1;
                let id: i64 = c.query_row(
                    &format!("SELECT id FROM {table} WHERE key = ?1"),
                    [&key_owned],
                    |r| r.get(0),
                )?;
                Ok((id, inserted))
            })
            .await?;
        Ok(WriteRef {
            system: self.system.clone(),
            id: id.to_string(),
            existing: !inserted,
        })
    }
}

fn customer_from_row(system: &str, r: &rusqlite::Row<'_>) -> rusqlite::Result<Customer> {
    let mut fields = std::collections::BTreeMap::new();
    if let Some(city) = r.get::<_, Option<String>>(7)? {
        fields.insert("city".to_string(), city);
    }
    let raw_phone: Option<String> = r.get(2)?;
    let e164: Option<String> = r.get(3)?;
    Ok(Customer {
        id: r.get(0)?,
        system: system.to_string(),
        name: r.get(1)?,
        phone: e164.or(raw_phone),
        email: r.get(4)?,
        tier: r.get(5)?,
        language: r.get(6)?,
        fields,
    })
}

const CUSTOMER_COLUMNS: &str = "id, name, phone, phone_e164, email, tier, language, city";

fn load_order(c: &Connection, id: &str) -> rusqlite::Result<Option<Order>> {
    let order = c
        .query_row(
            "SELECT id, customer_id, status, placed_at, total, currency FROM orders WHERE id = ?1",
            [id],
            |r| {
                Ok(Order {
                    id: r.get(0)?,
                    customer_id: r.get(1)?,
                    status: r.get(2)?,
                    placed_at: r.get(3)?,
                    total: r.get(4)?,
                    currency: r.get(5)?,
                    ..Order::default()
                })
            },
        )
        .optional()?;
    let Some(mut order) = order else {
        return Ok(None);
    };
    let mut st = c.prepare("SELECT sku, name, quantity FROM order_lines WHERE order_id = ?1")?;
    order.lines = st
        .query_map([&order.id], |r| {
            Ok(OrderLine {
                sku: r.get(0)?,
                name: r.get(1)?,
                quantity: r.get(2)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(Some(order))
}

#[async_trait]
impl Connector for EmbeddedCrm {
    fn system(&self) -> &str {
        &self.system
    }

    async fn find_customer_by_phone(&self, phone: &E164) -> Result<Option<Customer>, CrmError> {
        let phone = phone.as_str().to_string();
        let system = self.system.clone();
        self.run(move |c| {
            c.query_row(
                &format!("SELECT {CUSTOMER_COLUMNS} FROM customers WHERE phone_e164 = ?1 ORDER BY id LIMIT 1"),
                [&phone],
                |r| customer_from_row(&system, r),
            )
            .optional()
        })
        .await
    }

    async fn get_customer(&self, id: &str) -> Result<Option<Customer>, CrmError> {
        let id = id.to_string();
        let system = self.system.clone();
        self.run(move |c| {
            c.query_row(
                &format!("SELECT {CUSTOMER_COLUMNS} FROM customers WHERE id = ?1"),
                [&id],
                |r| customer_from_row(&system, r),
            )
            .optional()
        })
        .await
    }

    async fn list_orders(&self, customer_id: &str) -> Result<Vec<Order>, CrmError> {
        let customer_id = customer_id.to_string();
        self.run(move |c| {
            let ids: Vec<String> = c
                .prepare(
                    "SELECT id FROM orders WHERE customer_id = ?1 ORDER BY placed_at DESC, id DESC",
                )?
                .query_map([&customer_id], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let mut orders = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(o) = load_order(c, &id)? {
                    orders.push(o);
                }
            }
            Ok(orders)
        })
        .await
    }

    async fn order_status(&self, order_id: &str) -> Result<Option<Order>, CrmError> {
        let wanted = order_id.trim().to_string();
        self.run(move |c| {
            if let Some(order) = load_order(c, &wanted)? {
                return Ok(Some(order));
            }
            // Callers say the number, not the prefix: "1001" for SO-1001.
            let digits: String = wanted.chars().filter(char::is_ascii_digit).collect();
            if digits.is_empty() {
                return Ok(None);
            }
            let ids: Vec<String> = c
                .prepare("SELECT id FROM orders")?
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let hit = ids
                .into_iter()
                .find(|id| id.chars().filter(char::is_ascii_digit).collect::<String>() == digits);
            match hit {
                Some(id) => load_order(c, &id),
                None => Ok(None),
            }
        })
        .await
    }

    async fn stock(&self, query: &ProductQuery) -> Result<Vec<StockLevel>, CrmError> {
        let query = query.clone();
        self.run(move |c| {
            let mut st =
                c.prepare("SELECT sku, name, aliases, quantity, forecast FROM products")?;
            let products: Vec<(String, String, String, f64, Option<f64>)> = st
                .query_map([], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })?
                .collect::<rusqlite::Result<_>>()?;
            let level = |p: &(String, String, String, f64, Option<f64>), score: f32| StockLevel {
                sku: p.0.clone(),
                name: p.1.clone(),
                quantity: p.3,
                forecast: p.4,
                score,
            };
            Ok(match &query {
                ProductQuery::Sku(sku) => products
                    .iter()
                    .filter(|p| p.0.eq_ignore_ascii_case(sku.trim()))
                    .map(|p| level(p, 1.0))
                    .collect(),
                ProductQuery::Name(name) => {
                    let mut hits: Vec<StockLevel> = products
                        .iter()
                        .filter_map(|p| {
                            let best = std::iter::once(p.1.as_str())
                                .chain(p.2.split(';').filter(|a| !a.trim().is_empty()))
                                .map(|n| fuzzy::score(name, n))
                                .fold(0.0, f32::max);
                            (best >= fuzzy::MIN_SCORE).then(|| level(p, best))
                        })
                        .collect();
                    hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.sku.cmp(&b.sku)));
                    hits
                }
            })
        })
        .await
    }

    async fn create_ticket(&self, t: &NewTicket, key: &str) -> Result<WriteRef, CrmError> {
        use rusqlite::types::Value as V;
        self.write_once(
            "INSERT OR IGNORE INTO tickets(key, queue, priority, subject, body, customer_id, phone, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            "tickets",
            key,
            vec![
                opt_text(&t.queue),
                V::Text(t.priority.as_str().to_string()),
                V::Text(t.subject.clone()),
                V::Text(t.body.clone()),
                opt_text(&t.customer_id),
                opt_text(&t.phone),
                V::Integer(now_ms()),
            ],
        )
        .await
    }

    async fn log_call(&self, call: &CallLog, key: &str) -> Result<WriteRef, CrmError> {
        use rusqlite::types::Value as V;
        let record = serde_json::to_string(call).map_err(|e| CrmError::Invalid {
            system: self.system.clone(),
            message: format!("call record cannot be serialised: {e}"),
        })?;
        self.write_once(
            "INSERT OR IGNORE INTO call_logs(key, call_id, customer_id, caller, disposition, record, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            "call_logs",
            key,
            vec![
                V::Text(call.call_id.clone()),
                opt_text(&call.customer_id),
                opt_text(&call.caller),
                V::Text(call.disposition.clone()),
                V::Text(record),
                V::Integer(now_ms()),
            ],
        )
        .await
    }

    async fn list_customers(&self, query: &CustomerQuery) -> Result<Vec<Customer>, CrmError> {
        // `follow_ups`: customers a follow-up task names (by id, or by the
        // number it was written for), tasks created since `since_ms`.
        let sql = match query.name.as_str() {
            "follow_ups" => format!(
                "SELECT {CUSTOMER_COLUMNS} FROM customers c WHERE c.phone_e164 IS NOT NULL AND EXISTS (
                     SELECT 1 FROM tasks t WHERE (t.customer_id = c.id OR t.phone = c.phone_e164)
                     AND t.created_at >= ?1) ORDER BY c.id"
            ),
            "all" => format!(
                "SELECT {CUSTOMER_COLUMNS} FROM customers c WHERE c.phone_e164 IS NOT NULL AND ?1 >= 0 ORDER BY c.id"
            ),
            other => {
                return Err(CrmError::Invalid {
                    system: self.system.clone(),
                    message: format!("no customer list {other:?} (use follow_ups or all)"),
                })
            }
        };
        let since = query.since_ms.unwrap_or(0).max(0);
        let system = self.system.clone();
        self.run(move |c| {
            c.prepare(&sql)?
                .query_map([since], |r| customer_from_row(&system, r))?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .await
    }

    async fn create_task(&self, t: &NewTask, key: &str) -> Result<WriteRef, CrmError> {
        use rusqlite::types::Value as V;
        self.write_once(
            "INSERT OR IGNORE INTO tasks(key, subject, body, due, customer_id, phone, assignee, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            "tasks",
            key,
            vec![
                V::Text(t.subject.clone()),
                V::Text(t.body.clone()),
                opt_text(&t.due),
                opt_text(&t.customer_id),
                opt_text(&t.phone),
                opt_text(&t.assignee),
                V::Integer(now_ms()),
            ],
        )
        .await
    }
}

fn opt_text(v: &Option<String>) -> rusqlite::types::Value {
    match v {
        Some(s) => rusqlite::types::Value::Text(s.clone()),
        None => rusqlite::types::Value::Null,
    }
}

/// One CSV row with its location, for error messages.
struct Row {
    file: PathBuf,
    line: u64,
    fields: std::collections::HashMap<String, String>,
}

impl Row {
    fn get(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(|s| s.trim())
    }
    fn opt(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|s| !s.is_empty())
    }
    /// Required columns are checked in `read_csv`, so a missing one reads
    /// as empty rather than failing twice.
    fn req(&self, name: &str) -> &str {
        self.get(name).unwrap_or("")
    }
    fn num(&self, name: &str) -> Option<f64> {
        self.opt(name).and_then(|s| s.parse().ok())
    }
    fn invalid(&self, system: &str, e: impl std::fmt::Display) -> CrmError {
        CrmError::Invalid {
            system: system.to_string(),
            message: format!("{}:{}: {e}", self.file.display(), self.line),
        }
    }
}

/// Read a CSV file with a header row; a missing file is no rows.
fn read_csv(system: &str, path: &Path) -> Result<Vec<Row>, CrmError> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let invalid = |message: String| CrmError::Invalid {
        system: system.to_string(),
        message,
    };
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| invalid(format!("{}: {e}", path.display())))?;
    let headers = reader
        .headers()
        .map_err(|e| invalid(format!("{}: {e}", path.display())))?
        .clone();
    let required: &[&str] = match path.file_name().and_then(|n| n.to_str()) {
        Some("customers.csv") => &["id", "name"],
        Some("products.csv") => &["sku", "name"],
        Some("orders.csv") => &["id"],
        Some("order_lines.csv") => &["order_id", "name"],
        _ => &[],
    };
    for col in required {
        if !headers.iter().any(|h| h == *col) {
            return Err(invalid(format!(
                "{}:1: missing column `{col}`",
                path.display()
            )));
        }
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| invalid(format!("{}: {e}", path.display())))?;
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        let fields: std::collections::HashMap<String, String> = headers
            .iter()
            .zip(record.iter())
            .map(|(h, v)| (h.to_string(), v.to_string()))
            .collect();
        for col in required {
            if fields.get(*col).is_none_or(|v| v.trim().is_empty()) {
                return Err(invalid(format!("{}:{line}: empty `{col}`", path.display())));
            }
        }
        rows.push(Row {
            file: path.to_path_buf(),
            line,
            fields,
        });
    }
    Ok(rows)
}

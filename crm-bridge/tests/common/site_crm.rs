//! "A site's own CRM": the kind of in-house REST API the generic connector
//! exists for, written for these tests (it imitates no vendor). OAuth2
//! client-credentials tokens that expire, customers, orders, products, and
//! three write endpoints with the three idempotency styles the connector
//! supports: an `Idempotency-Key` header (calls), 409 on a duplicate
//! `external_id` (tickets), and a lookup by `external_id` (tasks).
//!
//! It can be stopped and started again on the same port with its data kept,
//! which is how the outage tests take "the CRM" down.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde_json::{json, Value};
use tokio::net::TcpListener;

pub const CLIENT_ID: &str = "voxbridge-test";
pub const CLIENT_SECRET: &str = "s3cret-for-tests";

#[derive(Default)]
pub struct Data {
    /// token → expiry
    pub tokens: HashMap<String, Instant>,
    /// Idempotency-Key → (call id, body)
    pub calls: HashMap<String, (String, Value)>,
    /// Calls in the order they were created, by customer.
    pub call_order: HashMap<String, Vec<String>>,
    pub tickets: HashMap<String, (String, Value)>,
    pub tasks: HashMap<String, (String, Value)>,
}

#[derive(Default)]
pub struct Site {
    pub data: Mutex<Data>,
    pub token_lifetime_secs: AtomicU64,
    pub tokens_issued: AtomicUsize,
    pub requests: AtomicUsize,
    pub call_posts: AtomicUsize,
    pub task_posts: AtomicUsize,
    /// Delay before answering a write, to make deliveries slow enough to
    /// kill a process in the middle of them.
    pub write_delay_ms: AtomicU64,
    pub unavailable: AtomicBool,
}

impl Site {
    pub fn revoke_tokens(&self) {
        self.data.lock().expect("lock").tokens.clear();
    }
    pub fn calls_created(&self) -> usize {
        self.data.lock().expect("lock").calls.len()
    }
}

pub struct Server {
    pub addr: SocketAddr,
    pub site: Arc<Site>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    pub async fn start() -> Server {
        let site = Arc::new(Site::default());
        site.token_lifetime_secs.store(3600, Ordering::SeqCst);
        Server::start_on("127.0.0.1:0".parse().expect("addr"), site).await
    }

    pub async fn start_on(addr: SocketAddr, site: Arc<Site>) -> Server {
        let listener = TcpListener::bind(addr).await.expect("bind site CRM");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app = router(Arc::clone(&site));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Server {
            addr,
            site,
            stop: Some(tx),
            task: Some(task),
        }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stop listening and close every connection.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            if tokio::time::timeout(Duration::from_secs(5), &mut Box::pin(task))
                .await
                .is_err()
            {
                panic!("site CRM did not stop");
            }
        }
    }

    /// Start again on the same port with the same data.
    pub async fn restart(&mut self) {
        self.stop().await;
        let again = Server::start_on(self.addr, Arc::clone(&self.site)).await;
        *self = again;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

fn router(site: Arc<Site>) -> Router {
    Router::new()
        .route("/oauth/token", post(token))
        .route("/api/v1/customers", get(search_customers))
        .route("/api/v1/customers/{id}", get(get_customer))
        .route("/api/v1/customers/{id}/orders", get(customer_orders))
        .route("/api/v1/orders/{id}", get(get_order))
        .route("/api/v1/products", get(products))
        .route("/api/v1/calls", post(create_call))
        .route("/api/v1/tickets", post(create_ticket))
        .route("/api/v1/tasks", post(create_task).get(find_tasks))
        .with_state(site)
}

fn error(status: StatusCode, code: &str) -> Response {
    (status, Json(json!({"error": code}))).into_response()
}

async fn token(State(site): State<Arc<Site>>, headers: HeaderMap, body: String) -> Response {
    let form: HashMap<String, String> = body
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| {
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .to_string()
            };
            (decode(k), decode(v))
        })
        .collect();
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return error(StatusCode::BAD_REQUEST, "unsupported_grant_type");
    }
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client", "error_description": "client authentication failed"})),
        )
            .into_response();
    }
    let n = site.tokens_issued.fetch_add(1, Ordering::SeqCst) + 1;
    let lifetime = site.token_lifetime_secs.load(Ordering::SeqCst);
    let token = format!("tok-{n}");
    site.data.lock().expect("lock").tokens.insert(
        token.clone(),
        Instant::now() + Duration::from_secs(lifetime),
    );
    Json(json!({"access_token": token, "token_type": "Bearer", "expires_in": lifetime, "scope": form.get("scope")}))
        .into_response()
}

/// Every API call: count, check availability and the bearer token.
fn admit(site: &Site, headers: &HeaderMap) -> Result<(), Box<Response>> {
    site.requests.fetch_add(1, Ordering::SeqCst);
    if site.unavailable.load(Ordering::SeqCst) {
        return Err(Box::new(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "maintenance",
        )));
    }
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let data = site.data.lock().expect("lock");
    match data.tokens.get(token) {
        Some(exp) if Instant::now() < *exp => Ok(()),
        _ => Err(Box::new(error(StatusCode::UNAUTHORIZED, "invalid_token"))),
    }
}

fn customers() -> Vec<Value> {
    vec![
        json!({"id": "42", "attributes": {"full_name": "Li Wei", "phone": "+86 138 0013 8000",
               "email": "li.wei@example.cn", "level": "G", "lang": "zh-CN", "owner": {"name": "Ann Lee"}}}),
        json!({"id": "43", "attributes": {"full_name": "Alice Johnson", "phone": "+1 555 123 4567",
               "email": "alice@example.com", "level": "B", "lang": "en-US", "owner": null}}),
    ]
}

fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

async fn search_customers(
    State(site): State<Arc<Site>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = admit(&site, &headers) {
        return *r;
    }
    let want = digits(q.get("phone").map(String::as_str).unwrap_or(""));
    let hits: Vec<Value> = customers()
        .into_iter()
        .filter(|c| digits(c["attributes"]["phone"].as_str().unwrap_or("")) == want)
        .collect();
    Json(json!({"data": hits, "meta": {"count": hits.len()}})).into_response()
}

async fn get_customer(
    State(site): State<Arc<Site>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = admit(&site, &headers) {
        return *r;
    }
    match customers().into_iter().find(|c| c["id"] == id.as_str()) {
        Some(c) => Json(json!({"data": c})).into_response(),
        None => error(StatusCode::NOT_FOUND, "not_found"),
    }
}

fn orders() -> Vec<Value> {
    vec![
        json!({"number": "SO-2", "customer": "42", "state": "S", "created": "2026-11-18", "amount": 1299.0,
               "currency": "CNY", "items": [{"sku": "ESP-PRO-1", "title": "Espresso Machine Pro", "qty": 1}]}),
        json!({"number": "SO-1", "customer": "42", "state": "D", "created": "2026-11-02", "amount": "399.00",
               "currency": "CNY", "items": [{"sku": "KET-BLU-17", "title": "Blue Electric Kettle 1.7L", "qty": "2"}]}),
    ]
}

async fn customer_orders(
    State(site): State<Arc<Site>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = admit(&site, &headers) {
        return *r;
    }
    let list: Vec<Value> = orders()
        .into_iter()
        .filter(|o| o["customer"] == id.as_str())
        .collect();
    Json(json!({"data": list})).into_response()
}

async fn get_order(
    State(site): State<Arc<Site>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = admit(&site, &headers) {
        return *r;
    }
    match orders().into_iter().find(|o| o["number"] == id.as_str()) {
        Some(o) => Json(json!({"data": o})).into_response(),
        None => error(StatusCode::NOT_FOUND, "not_found"),
    }
}

async fn products(
    State(site): State<Arc<Site>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = admit(&site, &headers) {
        return *r;
    }
    let all = vec![
        json!({"sku": "KET-BLU-17", "name": "Blue Electric Kettle 1.7L", "on_hand": 42, "incoming": "40"}),
        json!({"sku": "KET-RED-17", "name": "Red Electric Kettle 1.7L", "on_hand": 0, "incoming": 25}),
        json!({"sku": "TOA-SS-2", "name": "Stainless Steel Toaster 2-Slice", "on_hand": 17}),
    ];
    // Like many CRMs, a loose search: any product sharing a word.
    let words: Vec<String> = q
        .get("q")
        .map(|s| {
            s.to_lowercase()
                .split_whitespace()
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let hits: Vec<Value> = all
        .into_iter()
        .filter(|p| {
            let name = p["name"].as_str().unwrap_or("").to_lowercase();
            let sku = p["sku"].as_str().unwrap_or("").to_lowercase();
            words
                .iter()
                .any(|w| sku == *w || name.contains(w.get(..4).unwrap_or(w)))
        })
        .collect();
    Json(json!({"items": hits})).into_response()
}

async fn slow_write(site: &Site) {
    let ms = site.write_delay_ms.load(Ordering::SeqCst);
    if ms > 0 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

async fn create_call(
    State(site): State<Arc<Site>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Err(r) = admit(&site, &headers) {
        return *r;
    }
    site.call_posts.fetch_add(1, Ordering::SeqCst);
    slow_write(&site).await;
    let Some(key) = headers.get("idempotency-key").and_then(|v| v.to_str().ok()) else {
        return error(StatusCode::BAD_REQUEST, "Idempotency-Key header required");
    };
    if body.get("duration").and_then(Value::as_u64).is_none() {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "duration must be a number",
        );
    }
    let mut data = site.data.lock().expect("lock");
    if let Some((id, _)) = data.calls.get(key) {
        // The same request again: the first answer again.
        return (StatusCode::OK, Json(json!({"id": id}))).into_response();
    }
    let id = format!("CALL-{}", data.calls.len() + 1);
    data.calls
        .insert(key.to_string(), (id.clone(), body.clone()));
    let customer = body["customer"].as_str().unwrap_or("-").to_string();
    let call_id = body["call_id"].as_str().unwrap_or("").to_string();
    data.call_order.entry(customer).or_default().push(call_id);
    (StatusCode::CREATED, Json(json!({"id": id}))).into_response()
}

async fn create_ticket(
    State(site): State<Arc<Site>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Err(r) = admit(&site, &headers) {
        return *r;
    }
    let ext = body["external_id"].as_str().unwrap_or("").to_string();
    let mut data = site.data.lock().expect("lock");
    if let Some((id, _)) = data.tickets.get(&ext) {
        return (
            StatusCode::CONFLICT,
            Json(json!({"error": "duplicate external_id", "id": id})),
        )
            .into_response();
    }
    let id = format!("T-{}", data.tickets.len() + 100);
    data.tickets.insert(ext, (id.clone(), body));
    (StatusCode::CREATED, Json(json!({"ticket": {"id": id}}))).into_response()
}

async fn create_task(
    State(site): State<Arc<Site>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Err(r) = admit(&site, &headers) {
        return *r;
    }
    site.task_posts.fetch_add(1, Ordering::SeqCst);
    let ext = body["external_id"].as_str().unwrap_or("").to_string();
    let mut data = site.data.lock().expect("lock");
    // No duplicate protection at all: the connector must look first.
    let id = format!("TASK-{}", data.tasks.len() + 1);
    data.tasks.insert(ext, (id.clone(), body));
    (StatusCode::CREATED, Json(json!({"id": id}))).into_response()
}

async fn find_tasks(
    State(site): State<Arc<Site>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = admit(&site, &headers) {
        return *r;
    }
    let ext = q.get("external_id").cloned().unwrap_or_default();
    let data = site.data.lock().expect("lock");
    let hits: Vec<Value> = data
        .tasks
        .get(&ext)
        .map(|(id, _)| json!({"id": id, "external_id": ext}))
        .into_iter()
        .collect();
    Json(json!({"data": hits})).into_response()
}

/// The connector configuration for this CRM (secret from `secret_env`).
pub fn config_yaml(base_url: &str, secret_env: &str) -> String {
    format!(
        r#"
default_country: CN
systems:
  site:
    kind: rest
    base_url: {base_url}/api/v1
    auth:
      type: oauth2_client_credentials
      token_url: {base_url}/oauth/token
      client_id: {CLIENT_ID}
      client_secret: {{ env: {secret_env} }}
      scope: "customers.read calls.write"
    idempotency_header: Idempotency-Key
    value_maps:
      tier: {{ G: gold, S: silver, "*": standard }}
      order_status: {{ D: delivered, S: shipped, C: cancelled }}
      intent_level: {{ S: high intent, A: medium intent, "*": low intent }}
    operations:
      find_customer:
        path: /customers
        query: {{ phone: "{{{{phone}}}}" }}
        result: $.data
        fields:
          id: $.id
          name: $.attributes.full_name
          phone: $.attributes.phone
          email: $.attributes.email
          tier: {{ path: $.attributes.level, map: tier }}
          language: $.attributes.lang
          account_manager: $.attributes.owner.name
      get_customer:
        path: /customers/{{{{id}}}}
        result: $.data
        fields:
          id: $.id
          name: $.attributes.full_name
          tier: {{ path: $.attributes.level, map: tier }}
      list_orders:
        path: /customers/{{{{customer_id}}}}/orders
        result: $.data
        fields: &order_fields
          id: $.number
          customer_id: $.customer
          status: {{ path: $.state, map: order_status }}
          placed_at: $.created
          total: $.amount
          currency: $.currency
          lines: $.items
          line_sku: $.sku
          line_name: $.title
          line_quantity: $.qty
      order_status:
        path: /orders/{{{{order_id}}}}
        result: $.data
        fields: *order_fields
      stock:
        path: /products
        query: {{ q: "{{{{query}}}}" }}
        result: $.items
        fields: {{ sku: $.sku, name: $.name, quantity: $.on_hand, forecast: $.incoming }}
      log_call:
        path: /calls
        id: $.id
        body:
          call_id: "{{{{call.call_id}}}}"
          customer: "{{{{call.customer_id}}}}"
          phone: "{{{{call.caller}}}}"
          started: "{{{{call.started_at_ms | datetime}}}}"
          duration: "{{{{call.duration_secs}}}}"
          outcome: "{{{{call.disposition | upper}}}}"
          intent: "{{{{call.intent_level | map:intent_level}}}}"
          topic: "{{{{call.top_intent | default:none}}}}"
          transcript: "{{{{call.transcript_text}}}}"
          slots: "{{{{call.slots}}}}"
          source: voxbridge
      create_ticket:
        path: /tickets
        id: $.ticket.id
        body:
          external_id: "{{{{key}}}}"
          subject: "{{{{ticket.subject}}}}"
          description: "{{{{ticket.body}}}}"
          priority: "{{{{ticket.priority}}}}"
          customer: "{{{{ticket.customer_id}}}}"
      create_task:
        path: /tasks
        id: $.id
        dedup:
          path: /tasks
          query: {{ external_id: "{{{{key}}}}" }}
          result: $.data
        body:
          external_id: "{{{{key}}}}"
          title: "{{{{task.subject}}}}"
          due: "{{{{task.due}}}}"
"#
    )
}

//! `bench/crm`: what the bridge costs on the request path, and how fast the
//! outbox drains.
//!
//! A local HTTP server (axum, on 127.0.0.1) plays the CRM. Lookups are
//! timed one at a time:
//! - a bare reqwest GET of the customer URL, body read and parsed as JSON
//!   (the least any client must do);
//! - the same lookup through the bridge on a cache miss (E.164
//!   normalisation, coalescer, breaker, time budget, generic REST connector
//!   with templates and field mapping);
//! - the bridge on a cache hit.
//!
//! Then the outbox: records committed to SQLite, delivered by the worker
//! to the local server (which keeps them by idempotency key), records/s.
//!
//! Usage: `cargo bench -p voxbridge-crm --bench crm [-- --lookups N --records N]`

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use voxbridge_crm::model::{CallLog, Write};
use voxbridge_crm::outbox::{DeliveryTarget, Outbox};
use voxbridge_crm::CrmConfig;

#[derive(Default)]
struct Crm {
    keys: Mutex<HashSet<String>>,
    posts: AtomicUsize,
}

async fn customers(Query(q): Query<std::collections::HashMap<String, String>>) -> Json<Value> {
    let phone = q.get("phone").cloned().unwrap_or_default();
    Json(json!({"data": [{"id": "42", "attributes": {
        "full_name": "Li Wei", "phone": phone, "email": "li.wei@example.cn",
        "level": "G", "lang": "zh-CN", "owner": {"name": "Ann Lee"}}}]}))
}

async fn calls(
    State(crm): State<Arc<Crm>>,
    headers: HeaderMap,
    Json(_body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    crm.posts.fetch_add(1, Ordering::Relaxed);
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let created = crm.keys.lock().map(|mut k| k.insert(key)).unwrap_or(false);
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    (status, Json(json!({"id": "CALL"})))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn config(base: &str, outbox: &std::path::Path, cache: bool) -> CrmConfig {
    let cache = if cache {
        "{ ttl: 5m, negative_ttl: 30s }"
    } else {
        "{ ttl: 0, negative_ttl: 0 }"
    };
    let yaml = format!(
        r#"
default_country: CN
systems:
  crm:
    kind: rest
    base_url: {base}
    idempotency_header: Idempotency-Key
    value_maps:
      tier: {{ G: gold, S: silver, "*": standard }}
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
      log_call:
        path: /calls
        id: $.id
        body:
          call_id: "{{{{call.call_id}}}}"
          customer: "{{{{call.customer_id}}}}"
          duration: "{{{{call.duration_secs}}}}"
          transcript: "{{{{call.transcript_text}}}}"
cache: {cache}
outbox:
  path: {outbox}
  durability: normal
  concurrency: 32
  poll_interval: 50ms
"#,
        outbox = outbox.display()
    );
    CrmConfig::from_yaml(&yaml, "bench.yaml").expect("bench config")
}

fn report(name: &str, samples: &mut [Duration]) -> (Duration, Duration) {
    samples.sort();
    let (p50, p99) = (percentile(samples, 0.50), percentile(samples, 0.99));
    println!(
        "  {name:<34} p50 {:>8.1} µs   p99 {:>8.1} µs   (n={})",
        us(p50),
        us(p99),
        samples.len()
    );
    (p50, p99)
}

fn main() {
    let lookups = arg("--lookups", 2000);
    let records = arg("--records", 5000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let crm = Arc::new(Crm::default());
        let app = Router::new()
            .route("/customers", get(customers))
            .route("/calls", post(calls))
            .with_state(Arc::clone(&crm));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let base = format!("http://{addr}");
        let dir = tempfile::tempdir().expect("temp dir");

        println!("voxbridge crm-bridge benchmark (2 worker threads, server in-process on {addr})");
        println!("lookups: {lookups} sequential, after 200 warm-up");

        // The three are measured in turn, one call each per round, so load
        // from anything else on the machine falls on all of them alike.
        let client = reqwest::Client::builder().no_proxy().tcp_nodelay(true).build().expect("client");
        let url = format!("{base}/customers?phone=%2B8613800138000");
        let miss_bridge = config(&base, &dir.path().join("o1.sqlite"), false)
            .build_bridge()
            .expect("bridge");
        let hit_bridge = config(&base, &dir.path().join("o2.sqlite"), true)
            .build_bridge()
            .expect("bridge");
        hit_bridge.lookup_caller("+86 138 0013 8000").await.expect("warm");
        let (mut bare, mut miss, mut hit) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..lookups + 200 {
            let t = Instant::now();
            let body = client.get(&url).send().await.expect("GET").bytes().await.expect("body");
            let v: Value = serde_json::from_slice(&body).expect("JSON");
            std::hint::black_box(v);
            let bare_t = t.elapsed();

            let t = Instant::now();
            let c = miss_bridge.lookup_caller("+86 138 0013 8000").await.expect("lookup");
            std::hint::black_box(c);
            let miss_t = t.elapsed();

            let t = Instant::now();
            let c = hit_bridge.lookup_caller("+86 138 0013 8000").await.expect("lookup");
            std::hint::black_box(c);
            let hit_t = t.elapsed();
            if i >= 200 {
                bare.push(bare_t);
                miss.push(miss_t);
                hit.push(hit_t);
            }
        }

        let (b50, b99) = report("bare reqwest GET + JSON parse", &mut bare);
        let (m50, m99) = report("bridge lookup, cache miss", &mut miss);
        let (h50, h99) = report("bridge lookup, cache hit", &mut hit);
        let over50 = us(m50) - us(b50);
        let over99 = us(m99) - us(b99);
        println!(
            "  bridge overhead on a miss: p50 {over50:+.1} µs, p99 {over99:+.1} µs  (goal ≤ 1000 µs p99) {}",
            if over99 <= 1000.0 { "OK" } else { "MISSED" }
        );
        println!(
            "  cache hit: p50 {:.1} µs, p99 {:.1} µs  (goal ≤ 50 µs) {}",
            us(h50),
            us(h99),
            if us(h99) <= 50.0 { "OK" } else { "MISSED" }
        );

        // Outbox throughput.
        for customers in [records / 10, records] {
            let path = dir.path().join(format!("outbox-{customers}.sqlite"));
            let cfg = config(&base, &path, true);
            let outbox: Outbox = cfg.open_outbox().expect("outbox");
            let writes: Vec<Write> = (0..records)
                .map(|i| {
                    Write::CallLog(CallLog {
                        call_id: format!("bench-{customers}-{i}"),
                        customer_id: Some(format!("C{}", i % customers.max(1))),
                        started_at_ms: 1_795_253_400_000,
                        ended_at_ms: 1_795_253_460_000,
                        disposition: "resolved".into(),
                        ..CallLog::default()
                    })
                })
                .collect();
            outbox.enqueue_all(writes).await.expect("enqueue");
            let target: Arc<dyn DeliveryTarget> = Arc::new(cfg.build_bridge().expect("bridge"));
            let watcher = outbox.clone();
            let before = crm.keys.lock().map(|k| k.len()).unwrap_or(0);
            let t = Instant::now();
            outbox
                .run(
                    target,
                    async move {
                        while watcher.counts().await.map(|c| c.pending).unwrap_or(1) > 0 {
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                    },
                    Duration::from_secs(5),
                )
                .await
                .expect("outbox run");
            let elapsed = t.elapsed();
            let delivered = crm.keys.lock().map(|k| k.len()).unwrap_or(0) - before;
            let rate = delivered as f64 / elapsed.as_secs_f64();
            println!(
                "outbox: {delivered} records, {customers} customers (in order per customer), concurrency 32: {:.2} s, {rate:.0} records/s (goal ≥ 2000) {}",
                elapsed.as_secs_f64(),
                if rate >= 2000.0 { "OK" } else { "MISSED" }
            );
        }
        println!("server saw {} call POSTs", crm.posts.load(Ordering::Relaxed));
    });
}

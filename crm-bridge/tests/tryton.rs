//! The Tryton connector against a real Tryton 7.0 server (from PyPI, see
//! scripts/install-crm-servers.sh) that this test starts on 127.0.0.1 with
//! its own configuration and SQLite database, and stops at the end.
//!
//! Creating the database (`trytond-admin -u sale`, ~20 s) and seeding it
//! (tests/tryton/seed.py: company, customers with phone numbers, products
//! with stock, sales) happens once; the seeded file is kept under the
//! target directory, keyed by the seed script's hash, and copied for each
//! run. All checks share one server, in one test, so the binary starts it
//! once.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use voxbridge_crm::model::{CallLog, ProductQuery, Speaker, Turn};
use voxbridge_crm::{Bridge, CrmConfig, CrmError, LookupFailed};

const DATABASE: &str = "voxbridge";
const ADMIN_PASSWORD: &str = "admin-for-tests";

fn venv() -> PathBuf {
    std::env::var_os("VOXBRIDGE_TRYTON_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/voxbridge/tryton-7.0")
        })
}

fn seed_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/tryton/seed.py")
}

/// FNV-1a of the seed script: a new script means a new template.
fn seed_hash() -> String {
    let text = std::fs::read(seed_script()).expect("read seed.py");
    let h = text.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    });
    format!("{h:016x}")
}

fn write_config(dir: &Path, port: u16) -> PathBuf {
    let conf = dir.join("trytond.conf");
    std::fs::write(
        &conf,
        format!(
            "[database]\nuri = sqlite://\npath = {}\n[web]\nlisten = 127.0.0.1:{port}\n[session]\ntimeout = 3600\n",
            dir.join("db").display()
        ),
    )
    .expect("write trytond.conf");
    conf
}

fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The seeded database file, made once per seed script version.
fn template() -> PathBuf {
    let python = venv().join("bin/python");
    assert!(
        python.exists() && venv().join("bin/trytond-admin").exists(),
        "Tryton 7.0 is not installed at {} (run scripts/install-crm-servers.sh, or set VOXBRIDGE_TRYTON_VENV)",
        venv().display()
    );
    let dir =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("tryton-template-{}", seed_hash()));
    let file = dir.join("db").join(format!("{DATABASE}.sqlite"));
    if file.exists() {
        return file;
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("db")).expect("template dir");
    let conf = write_config(&dir, 1);
    let building = dir.join("db").join(format!("{DATABASE}.sqlite"));
    // trytond-admin needs the SQLite file to exist.
    std::fs::write(&building, b"").expect("create db file");
    let pass = dir.join("admin-password");
    std::fs::write(&pass, ADMIN_PASSWORD).expect("password file");
    run(
        Command::new(venv().join("bin/trytond-admin"))
            .args(["-c"])
            .arg(&conf)
            .args([
                "-d",
                DATABASE,
                "--all",
                "--email",
                "admin@example.com",
                "-u",
                "sale",
                "--activate-dependencies",
            ])
            .env("TRYTONPASSFILE", &pass),
        "trytond-admin",
    );
    let summary = run(
        Command::new(&python)
            .arg(seed_script())
            .arg(&conf)
            .arg(DATABASE),
        "seed.py",
    );
    std::fs::write(dir.join("seed.json"), summary).expect("seed summary");
    file
}

/// A running trytond, killed when dropped.
struct Server {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

async fn start_server() -> Server {
    let template = tokio::task::spawn_blocking(template)
        .await
        .expect("template");
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("db")).expect("db dir");
    std::fs::copy(
        &template,
        dir.path().join("db").join(format!("{DATABASE}.sqlite")),
    )
    .expect("copy db");
    let port = free_port();
    let conf = write_config(dir.path(), port);
    let log = std::fs::File::create(dir.path().join("trytond.log")).expect("log file");
    let child = Command::new(venv().join("bin/trytond"))
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start trytond");
    let server = Server {
        child,
        port,
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "trytond did not listen on {port} within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server
}

fn bridge(port: u16, password_env: &str) -> Bridge {
    let yaml = format!(
        r#"
default_country: CN
systems:
  erp:
    kind: tryton
    url: http://127.0.0.1:{port}
    database: {DATABASE}
    user: admin
    password: {{ env: {password_env} }}
    tier_map: tier
    value_maps:
      tier: {{ Gold: gold, Silver: silver, "*": standard }}
timeouts:
  find_customer: 5s
  get_customer: 5s
  list_orders: 5s
  order_status: 5s
  stock: 5s
"#
    );
    CrmConfig::from_yaml(&yaml, "tryton.yaml")
        .expect("config")
        .build_bridge()
        .expect("bridge")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tryton_customers_orders_stock_and_call_notes() {
    let server = start_server().await;
    std::env::set_var("VB_TRYTON_PASSWORD", ADMIN_PASSWORD);
    let b = bridge(server.port, "VB_TRYTON_PASSWORD");

    // Customers by phone, typed the ways people type them.
    let li = b
        .lookup_caller("013800138000")
        .await
        .expect("lookup")
        .expect("Li Wei");
    assert_eq!(li.name, "Li Wei");
    assert_eq!(li.tier.as_deref(), Some("gold"));
    assert_eq!(li.email.as_deref(), Some("li.wei@example.cn"));
    assert_eq!(li.fields.get("code").map(String::as_str), Some("CUST-001"));
    let wang = b
        .lookup_caller("+86 10 6552 9988")
        .await
        .expect("lookup")
        .expect("landline");
    assert_eq!(
        (wang.name.as_str(), wang.tier.as_deref()),
        ("Wang Fang", Some("silver"))
    );
    let wang_mobile = b
        .lookup_caller("139-1234-5678")
        .await
        .expect("lookup")
        .expect("mobile");
    assert_eq!(wang_mobile.id, wang.id);
    let alice = b
        .lookup_caller("+1 201 555 0123")
        .await
        .expect("lookup")
        .expect("US");
    assert_eq!((alice.name.as_str(), alice.tier), ("Alice Johnson", None));
    assert_eq!(b.lookup_caller("13700000000").await.expect("lookup"), None);
    assert_eq!(
        b.customer(&li.id)
            .await
            .expect("get")
            .map(|c| c.name)
            .as_deref(),
        Some("Li Wei")
    );
    assert_eq!(b.customer("99999").await.expect("get"), None);

    // Sales: the draft is known by its reference, the quotation by number.
    let orders = b.orders(&li.id).await.expect("orders");
    assert_eq!(orders.len(), 2);
    assert_eq!(orders[0].id, "WEB-1002");
    assert_eq!(orders[0].status, "draft");
    assert_eq!(orders[0].total.as_deref(), Some("1817.00"));
    assert_eq!(orders[0].lines.len(), 2);
    assert_eq!(orders[1].status, "quoted");
    assert_eq!(orders[1].placed_at.as_deref(), Some("2026-11-02"));
    assert_eq!(orders[1].currency.as_deref(), Some("CNY"));
    assert_eq!(orders[1].lines[0].sku.as_deref(), Some("KET-BLU-17"));
    let cancelled = b
        .order_status("web-1003")
        .await
        .expect("status")
        .expect("found");
    assert_eq!(cancelled.status, "cancelled");
    assert_eq!(b.order_status("NOPE-1").await.expect("status"), None);

    // Stock in the warehouse: on hand and forecast (2 kettles going out).
    let kettle = b
        .stock(&ProductQuery::Name("the blue kettle".into()))
        .await
        .expect("stock");
    assert_eq!(kettle[0].sku, "KET-BLU-17");
    assert_eq!((kettle[0].quantity, kettle[0].forecast), (42.0, Some(40.0)));
    let red = b
        .stock(&ProductQuery::Sku("ket-red-17".into()))
        .await
        .expect("stock");
    assert_eq!((red.len(), red[0].quantity), (1, 0.0));
    let toaster = b
        .stock(&ProductQuery::Name("toaster".into()))
        .await
        .expect("stock");
    assert_eq!(toaster[0].quantity, 17.0);

    // The call log is a note on the party, once per key.
    let call = CallLog {
        call_id: "tryton-call-1@pbx".into(),
        caller: Some("+8613800138000".into()),
        customer_id: Some(li.id.clone()),
        started_at_ms: 1_795_253_400_000,
        ended_at_ms: 1_795_253_442_000,
        transcript: vec![Turn {
            speaker: Speaker::Caller,
            text: "Where is order WEB-1002?".into(),
            at_ms: 0,
        }],
        disposition: "resolved".into(),
        ..CallLog::default()
    };
    let first = b.log_call(&call, "vb-tryton-1").await.expect("note");
    let again = b.log_call(&call, "vb-tryton-1").await.expect("note again");
    assert_eq!(first.id, again.id);
    assert!(!first.existing && again.existing);
    let other = b.log_call(&call, "vb-tryton-2").await.expect("second call");
    assert_ne!(other.id, first.id);
    assert!(matches!(
        b.create_ticket(&Default::default(), "k").await,
        Err(CrmError::Unsupported { .. })
    ));

    // A wrong password is an authentication error, not a hang or a panic.
    std::env::set_var("VB_TRYTON_WRONG", "not-the-password");
    let wrong = bridge(server.port, "VB_TRYTON_WRONG");
    match wrong.lookup_caller("013800138000").await {
        Err(LookupFailed::Crm(CrmError::Auth { .. })) => {}
        other => panic!("wrong password gave {other:?}"),
    }
    drop(server);
}

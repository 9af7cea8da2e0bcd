//! SIP over TLS with real peers, certificates made by the test with
//! Debian's `openssl` (a test CA, the bot's and the phone's certificates
//! for 127.0.0.1, and a second, untrusted CA):
//!
//! - baresip (Debian `baresip-core`) calls the bot over TLS
//!   (`;transport=tls`) with SRTP mandatory (its `srtp` module): the call is
//!   answered with a Contact on the TLS listener, media is SRTP, a key press
//!   picks the menu entry and the bot hangs up.
//! - A TLS client that trusts only another CA refuses the bot's
//!   certificate: the handshake fails, the bot counts it in
//!   `voxbridge_sip_tls_handshake_failures_total` and logs it once.
//! - A key that does not belong to the certificate stops the start with a
//!   line naming both files.
//!
//! Not here: sipp over TLS. Debian's sipp 3.6.1 is built without OpenSSL
//! (`sipp -v`: "SIPp v3.6.1-SCTP-PCAP-RTPSTREAM"; `-t l1` answers "To use a
//! TLS transport you must compile SIPp with OpenSSL").
//!
//! 127.0.0.1 only; one call per test, bounded in time.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use voxbridge_e2e::baresip::{baresip_available, Baresip};
use voxbridge_e2e::{free_port, prom_value, scratch_dir, tail, workspace_root, Bot, BotConfig};

/// This binary's RTP ranges, apart from the other media tests' ranges.
const RANGES: [(u16, u16); 2] = [(50_700, 50_799), (50_800, 50_899)];

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("openssl runs (Debian openssl; scripts/install-deps.sh)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA `name`.crt/.key in `dir`.
fn make_ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.crt"),
        ],
    );
}

/// A certificate `name`.crt/.key for 127.0.0.1 signed by CA `ca`.
fn make_leaf(dir: &Path, ca: &str, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
        ],
    );
    std::fs::write(
        dir.join(format!("{name}.ext")),
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.crt"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
            "-out",
            &format!("{name}.crt"),
        ],
    );
}

struct Certs {
    dir: PathBuf,
}

impl Certs {
    fn make(dir: &Path) -> Certs {
        let dir = dir.join("certs");
        std::fs::create_dir_all(&dir).unwrap();
        make_ca(&dir, "ca");
        make_ca(&dir, "rogue-ca");
        make_leaf(&dir, "ca", "bot");
        make_leaf(&dir, "ca", "phone");
        // baresip wants its certificate and key in one file.
        let both = [
            std::fs::read_to_string(dir.join("phone.crt")).unwrap(),
            std::fs::read_to_string(dir.join("phone.key")).unwrap(),
        ]
        .concat();
        std::fs::write(dir.join("phone.pem"), both).unwrap();
        Certs { dir }
    }

    fn path(&self, file: &str) -> String {
        self.dir.join(file).display().to_string()
    }
}

fn tls_block(certs: &Certs, port: u16, key: &str) -> String {
    format!(
        "tls:\n  listen: 127.0.0.1:{port}\n  cert_file: {}\n  key_file: {}\n  ca_file: {}\n",
        certs.path("bot.crt"),
        certs.path(key),
        certs.path("ca.crt"),
    )
}

fn bot_config(dir: &Path, sip: String, ports: (u16, u16)) -> BotConfig {
    let script = workspace_root().join("tests/scripts/media-security.yaml");
    BotConfig {
        sip,
        more: format!(
            "dialog:\n  script: {}\ncdr:\n  path: {}\n",
            script.display(),
            dir.join("cdr.sqlite").display(),
        ),
        env: vec![
            ("VOXBRIDGE_RTP_PORT_MIN".into(), ports.0.to_string()),
            ("VOXBRIDGE_RTP_PORT_MAX".into(), ports.1.to_string()),
        ],
        ..BotConfig::default()
    }
}

/// The one call record: (end_reason, dtmf).
fn call_record(dir: &Path) -> (String, String) {
    let start = Instant::now();
    loop {
        let row = rusqlite::Connection::open(dir.join("cdr.sqlite")).and_then(|db| {
            db.query_row("SELECT end_reason, dtmf FROM calls", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
        });
        match row {
            Ok(row) => return row,
            Err(e) if start.elapsed() > Duration::from_secs(20) => panic!("no call record: {e}"),
            Err(_) => thread::sleep(Duration::from_millis(100)),
        }
    }
}

fn silence_wav(path: &Path, secs: u32) -> PathBuf {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for _ in 0..secs * 8000 {
        w.write_sample(0i16).unwrap();
    }
    w.finalize().unwrap();
    path.to_path_buf()
}

#[test]
fn baresip_calls_over_tls_with_srtp_and_keys_are_heard() {
    assert!(
        baresip_available(),
        "baresip (Debian baresip-core) is needed"
    );
    let dir = scratch_dir("tls_baresip").unwrap();
    let certs = Certs::make(&dir);
    let tls_port = free_port().unwrap();
    let cfg = bot_config(
        &dir,
        format!("srtp: required\n{}", tls_block(&certs, tls_port, "bot.key")),
        RANGES[0],
    );
    let bot = Bot::start("tls_baresip_bot", &cfg).expect("bot starts");
    bot.wait_for_log("calls run the dialog script", Duration::from_secs(30))
        .expect("the script loads");
    assert!(
        bot.log().contains("SIP TLS listening"),
        "{}",
        tail(&bot.log(), 20)
    );
    let silence = silence_wav(&dir.join("silence.wav"), 60);
    let mut phone = Baresip::dial_with(
        &dir,
        "+15550001234",
        &silence,
        &format!("sip:bot@127.0.0.1:{tls_port};transport=tls"),
        Duration::from_secs(30),
        &["srtp.so"],
        ";transport=tls;mediaenc=srtp-mand",
        &format!(
            "sip_certificate {}\nsip_cafile {}\n",
            certs.path("phone.pem"),
            certs.path("ca.crt")
        ),
    )
    .expect("baresip starts");
    assert!(
        bot.wait_until(Duration::from_secs(15), |l| l
            .contains("media secured by SRTP")),
        "the call did not come up with SRTP over TLS:\n{}\n{}",
        tail(&bot.log(), 30),
        tail(&phone.log(), 80)
    );
    thread::sleep(Duration::from_millis(3000));
    phone
        .keys("1#", Duration::from_millis(300))
        .expect("baresip keys");
    let exit = phone.wait_exit(Duration::from_secs(30));
    let (end_reason, dtmf) = call_record(&dir);
    let trace = phone.log();
    let log = bot.stop().expect("bot stops");
    assert!(
        exit.is_some(),
        "baresip still running:\n{}",
        tail(&trace, 40)
    );
    let answer_at = trace
        .find("SIP/2.0 200 OK")
        .expect("the 200 OK in the trace");
    let answer = &trace[answer_at..];
    // Our Contact sends the caller's in-dialog requests to the TLS listener.
    assert!(
        answer.contains(&format!("127.0.0.1:{tls_port};transport=tls")),
        "the 200 OK's Contact is not on the TLS listener:\n{}",
        tail(&trace, 80)
    );
    assert!(
        answer.contains("RTP/SAVP") && answer.contains("a=crypto:"),
        "{}",
        tail(&trace, 60)
    );
    // The INVITE went over TLS (the Via baresip wrote says so).
    assert!(trace.contains("SIP/2.0/TLS"), "{}", tail(&trace, 60));
    assert!(
        dtmf.starts_with('1'),
        "keys heard: {dtmf:?}\n{}",
        tail(&log, 30)
    );
    assert_eq!(end_reason, "bot_hangup", "{}", tail(&log, 30));
}

#[test]
fn a_client_trusting_another_ca_refuses_the_bot_and_the_failure_is_counted() {
    let dir = scratch_dir("tls_rogue_client").unwrap();
    let certs = Certs::make(&dir);
    let tls_port = free_port().unwrap();
    let cfg = bot_config(&dir, tls_block(&certs, tls_port, "bot.key"), RANGES[1]);
    let bot = Bot::start("tls_rogue_client_bot", &cfg).expect("bot starts");
    let connect = format!("127.0.0.1:{tls_port}");
    let attempt = |ca: &str| {
        Command::new("openssl")
            .args([
                "s_client",
                "-connect",
                &connect,
                "-verify_return_error",
                "-CAfile",
            ])
            .arg(certs.path(ca))
            .stdin(Stdio::null())
            .output()
            .expect("openssl s_client runs")
    };
    // Trusting the right CA: the handshake completes.
    let good = attempt("ca.crt");
    assert!(
        String::from_utf8_lossy(&good.stdout).contains("Verify return code: 0 (ok)"),
        "{}",
        String::from_utf8_lossy(&good.stdout)
    );
    // Trusting another CA: refused, twice; one log line, two in the metric.
    for _ in 0..2 {
        let bad = attempt("rogue-ca.crt");
        assert!(
            !bad.status.success(),
            "the rogue-CA client accepted the bot"
        );
    }
    let metrics = bot.wait_metric(
        "voxbridge_sip_tls_handshake_failures_total",
        2.0,
        Duration::from_secs(10),
    );
    let log = bot.stop().expect("bot stops");
    assert_eq!(
        prom_value(&metrics, "voxbridge_sip_tls_handshake_failures_total"),
        Some(2.0)
    );
    assert_eq!(
        log.matches("TLS handshake failed").count(),
        1,
        "one line per source per minute:\n{}",
        tail(&log, 20)
    );
}

#[test]
fn a_key_that_is_not_the_certificates_stops_the_start() {
    let dir = scratch_dir("tls_mismatch").unwrap();
    let certs = Certs::make(&dir);
    let tls_port = free_port().unwrap();
    // The phone's key with the bot's certificate.
    let cfg = bot_config(&dir, tls_block(&certs, tls_port, "phone.key"), RANGES[1]);
    assert!(
        Bot::start("tls_mismatch_bot", &cfg).is_err(),
        "the bot started"
    );
    let log =
        std::fs::read_to_string(workspace_root().join("target/e2e/tls_mismatch_bot/voxbridge.log"))
            .unwrap();
    assert!(
        log.contains("phone.key") && log.contains("bot.crt") && log.contains("sip.tls"),
        "{}",
        tail(&log, 10)
    );
}

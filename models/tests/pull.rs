//! `models pull` against a local HTTP server: sha256 verification, resume
//! after an interrupted transfer (within one call and across calls), a
//! server that ignores ranges, a corrupt download, an existing file.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use voxbridge_models::checksum::sha256_hex;
use voxbridge_models::pull::{pull, PullOptions};
use voxbridge_models::ModelError;

/// How the server answers the n-th request.
#[derive(Debug, Clone, Copy)]
enum Behaviour {
    /// Serve (honouring Range).
    Serve,
    /// Serve, but close the connection after this many body bytes.
    CutAfter(usize),
    /// Answer 200 with the whole file whatever Range says.
    IgnoreRange,
    /// Serve bytes with one flipped.
    Corrupt,
}

struct Server {
    base: String,
    ranges: Arc<Mutex<Vec<Option<String>>>>,
}

/// Serves `body` at `/ggml-<name>.bin`; request i behaves as `plan[i]`
/// (the last entry repeats).
fn serve(name: &str, body: Vec<u8>, plan: Vec<Behaviour>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let ranges = Arc::new(Mutex::new(Vec::new()));
    let seen = ranges.clone();
    let path = format!("/ggml-{name}.bin");
    std::thread::spawn(move || {
        for (i, stream) in listener.incoming().enumerate() {
            let Ok(stream) = stream else { return };
            let b = plan[i.min(plan.len() - 1)];
            handle(stream, &path, &body, b, &seen);
        }
    });
    Server { base, ranges }
}

fn handle(
    mut s: TcpStream,
    path: &str,
    body: &[u8],
    b: Behaviour,
    seen: &Mutex<Vec<Option<String>>>,
) {
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let target = line.split_whitespace().nth(1).unwrap_or("").to_string();
    let mut range = None;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).unwrap() == 0 || h == "\r\n" {
            break;
        }
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("range:") {
            range = Some(v.trim().to_string());
        }
    }
    seen.lock().unwrap().push(range.clone());
    if target != path {
        let _ = s
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
    }
    let mut data = body.to_vec();
    if let Behaviour::Corrupt = b {
        let mid = data.len() / 2;
        data[mid] ^= 1;
    }
    let start = match (b, &range) {
        (Behaviour::IgnoreRange, _) | (_, None) => None,
        (_, Some(r)) => r
            .strip_prefix("bytes=")
            .and_then(|r| r.strip_suffix('-'))
            .and_then(|n| n.parse::<usize>().ok()),
    };
    let (status, slice) = match start {
        Some(n) if n >= data.len() => {
            let _ = s.write_all(b"HTTP/1.1 416 Range Not Satisfiable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            return;
        }
        Some(n) => (
            format!(
                "206 Partial Content\r\nContent-Range: bytes {n}-{}/{}",
                data.len() - 1,
                data.len()
            ),
            &data[n..],
        ),
        None => ("200 OK".to_string(), &data[..]),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        slice.len()
    );
    let _ = s.write_all(head.as_bytes());
    let send = match b {
        Behaviour::CutAfter(k) => &slice[..k.min(slice.len())],
        _ => slice,
    };
    for chunk in send.chunks(64 * 1024) {
        if s.write_all(chunk).is_err() {
            return;
        }
    }
    let _ = s.flush();
    // Drain so the client sees a clean close.
    let mut sink = [0u8; 16];
    let _ = s.set_read_timeout(Some(std::time::Duration::from_millis(50)));
    let _ = s.read(&mut sink);
}

fn body(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

fn opts(server: &Server, dir: &PathBuf, sha: &str) -> PullOptions {
    PullOptions {
        base_url: server.base.clone(),
        sha256: Some(sha.to_string()),
        attempts: 3,
        ..PullOptions::new(dir)
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn downloads_and_verifies() {
    let data = body(300_000);
    let sha = sha256_hex(&data);
    let server = serve("test", data.clone(), vec![Behaviour::Serve]);
    let dir = support::temp_dir("pull-plain");
    let out = rt()
        .block_on(pull("test", &opts(&server, &dir, &sha)))
        .unwrap();
    assert_eq!(out.path, dir.join("ggml-test.bin"));
    assert_eq!(std::fs::read(&out.path).unwrap(), data);
    assert_eq!(
        (
            out.bytes,
            out.resumed_from,
            out.requests,
            out.already_present
        ),
        (300_000, 0, 1, false)
    );
    assert!(!dir.join("ggml-test.bin.part").exists());
    // Again: already there, verified, nothing fetched.
    let again = rt()
        .block_on(pull("test", &opts(&server, &dir, &sha)))
        .unwrap();
    assert!(again.already_present);
    assert_eq!(server.ranges.lock().unwrap().len(), 1);
}

#[test]
fn an_interrupted_transfer_resumes_within_the_call() {
    let data = body(1_000_000);
    let sha = sha256_hex(&data);
    let server = serve(
        "test",
        data.clone(),
        vec![Behaviour::CutAfter(400_000), Behaviour::Serve],
    );
    let dir = support::temp_dir("pull-resume");
    let out = rt()
        .block_on(pull("test", &opts(&server, &dir, &sha)))
        .unwrap();
    assert_eq!(std::fs::read(&out.path).unwrap(), data);
    assert_eq!(out.requests, 2);
    let ranges = server.ranges.lock().unwrap().clone();
    assert_eq!(ranges[0], None);
    let resumed: usize = ranges[1]
        .as_deref()
        .unwrap()
        .trim_start_matches("bytes=")
        .trim_end_matches('-')
        .parse()
        .unwrap();
    assert!(resumed > 0 && resumed <= 400_000, "{ranges:?}");
}

#[test]
fn a_part_file_from_an_earlier_call_is_resumed() {
    let data = body(500_000);
    let sha = sha256_hex(&data);
    let server = serve("test", data.clone(), vec![Behaviour::CutAfter(200_000)]);
    let dir = support::temp_dir("pull-later");
    let mut o = opts(&server, &dir, &sha);
    o.attempts = 1;
    let e = rt().block_on(pull("test", &o)).unwrap_err();
    assert!(
        e.to_string().contains("interrupted") || e.to_string().contains("ggml-test.bin"),
        "{e}"
    );
    let part = std::fs::metadata(dir.join("ggml-test.bin.part"))
        .unwrap()
        .len();
    assert!(part > 0 && part <= 200_000, "{part}");
    assert!(!dir.join("ggml-test.bin").exists());
    // A later call against a healthy server picks up where it stopped.
    let healthy = serve("test", data.clone(), vec![Behaviour::Serve]);
    let out = rt()
        .block_on(pull("test", &opts(&healthy, &dir, &sha)))
        .unwrap();
    assert_eq!(out.resumed_from, part);
    assert_eq!(std::fs::read(&out.path).unwrap(), data);
    assert_eq!(
        healthy.ranges.lock().unwrap()[0].as_deref(),
        Some(format!("bytes={part}-").as_str())
    );
}

#[test]
fn a_server_that_ignores_ranges_means_starting_over() {
    let data = body(400_000);
    let sha = sha256_hex(&data);
    let server = serve(
        "test",
        data.clone(),
        vec![Behaviour::CutAfter(100_000), Behaviour::IgnoreRange],
    );
    let dir = support::temp_dir("pull-norange");
    let out = rt()
        .block_on(pull("test", &opts(&server, &dir, &sha)))
        .unwrap();
    assert_eq!(std::fs::read(&out.path).unwrap(), data);
}

#[test]
fn a_corrupt_download_is_not_installed() {
    let data = body(200_000);
    let sha = sha256_hex(&data);
    let server = serve("test", data, vec![Behaviour::Corrupt]);
    let dir = support::temp_dir("pull-corrupt");
    let e = rt()
        .block_on(pull("test", &opts(&server, &dir, &sha)))
        .unwrap_err();
    assert!(matches!(e, ModelError::Checksum { .. }), "{e}");
    assert!(!dir.join("ggml-test.bin").exists());
    assert!(!dir.join("ggml-test.bin.part").exists());
}

#[test]
fn unknown_models_and_bad_names_are_errors() {
    let server = serve("test", body(10), vec![Behaviour::Serve]);
    let dir = support::temp_dir("pull-404");
    let e = rt()
        .block_on(pull("nosuch", &opts(&server, &dir, &"0".repeat(64))))
        .unwrap_err();
    assert!(e.to_string().contains("404"), "{e}");
    let e = rt()
        .block_on(pull("../x", &opts(&server, &dir, &"0".repeat(64))))
        .unwrap_err();
    assert!(matches!(e, ModelError::Config(_)), "{e}");
    // No checksum for a model that is not pinned: refused before any request.
    let mut o = opts(&server, &dir, "");
    o.sha256 = None;
    assert!(rt().block_on(pull("base", &o)).is_err());
    assert_eq!(server.ranges.lock().unwrap().len(), 1);
}

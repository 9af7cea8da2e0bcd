//! SIP over TLS: the listener's certificate and key, the trust anchors for
//! outbound TLS, and the accept loop. We accept and handshake ourselves
//! (rather than with rsipstack's TLS listener) so that every failed
//! handshake is counted in a metric and logged at most once per source per
//! minute; the established stream is handed to the stack as its own
//! `TlsConnection`, so transactions and dialogs see nothing different.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rsipstack::sip::transport::Transport as SipTransport;
use rsipstack::transaction::endpoint::EndpointInnerRef;
use rsipstack::transport::tls::TlsConnection;
use rsipstack::transport::{SipAddr, SipConnection};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::SipError;
use crate::config::SipTlsConfig;
use crate::metrics::Metrics;

/// A handshake that has not finished by then is a failure (and frees the task).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often one source's failed handshakes are named in the log.
pub const LOG_EVERY: Duration = Duration::from_secs(60);
/// Sources remembered for log pacing before the oldest are forgotten.
const MAX_LOGGED_SOURCES: usize = 4096;

/// What start-up loaded from `sip.tls`.
pub struct TlsMaterial {
    /// Handshakes on the listener.
    pub acceptor: TlsAcceptor,
    /// Given to the stack for the TLS connections it opens (CA anchors).
    pub client: rsipstack::transport::TlsConfig,
}

/// Read and check the certificate, key and CA files named in `cfg`. Errors
/// name the file and what is wrong with it, never its contents.
pub fn load(cfg: &SipTlsConfig) -> Result<TlsMaterial, SipError> {
    let cert_pem = read("sip.tls.cert_file", &cfg.cert_file)?;
    let key_pem = read("sip.tls.key_file", &cfg.key_file)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| bad("sip.tls.cert_file", &cfg.cert_file, &e.to_string()))?;
    if certs.is_empty() {
        return Err(bad(
            "sip.tls.cert_file",
            &cfg.cert_file,
            "no PEM certificate in it",
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        bad(
            "sip.tls.key_file",
            &cfg.key_file,
            &format!("no usable PEM private key ({e})"),
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certified = CertifiedKey::from_der(certs, key, &provider).map_err(|e| {
        SipError::Config(format!(
            "sip.tls: key {} does not fit certificate {}: {e}",
            cfg.key_file.display(),
            cfg.cert_file.display()
        ))
    })?;
    // `Unknown` (the provider cannot tell) passes: the first handshake will.
    if let Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) =
        certified.keys_match()
    {
        return Err(SipError::Config(format!(
            "sip.tls: key {} is not the key of certificate {}",
            cfg.key_file.display(),
            cfg.cert_file.display()
        )));
    }
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SipError::Config(format!("sip.tls: {e}")))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(OneCert(Arc::new(certified))));
    let ca_certs = match &cfg.ca_file {
        Some(path) => {
            let pem = read("sip.tls.ca_file", path)?;
            let n = CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad("sip.tls.ca_file", path, &e.to_string()))?
                .len();
            if n == 0 {
                return Err(bad("sip.tls.ca_file", path, "no PEM certificate in it"));
            }
            Some(pem)
        }
        None => None,
    };
    Ok(TlsMaterial {
        acceptor: TlsAcceptor::from(Arc::new(server)),
        client: rsipstack::transport::TlsConfig {
            ca_certs,
            ..Default::default()
        },
    })
}

fn read(key: &str, path: &Path) -> Result<Vec<u8>, SipError> {
    std::fs::read(path).map_err(|e| bad(key, path, &e.to_string()))
}

fn bad(key: &str, path: &Path, what: &str) -> SipError {
    SipError::Config(format!("{key} {}: {what}", path.display()))
}

/// The listener's one certificate, whatever name the client asks for.
#[derive(Debug)]
struct OneCert(Arc<CertifiedKey>);

impl ResolvesServerCert for OneCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// Accept TLS connections on `listener` until `cancel`, handing each
/// established one to the stack; `advertised` is the address our Via and
/// Contact carry for it.
pub fn spawn_accept(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    advertised: SocketAddr,
    endpoint: EndpointInnerRef,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
) {
    let failures = Arc::new(Mutex::new(FailureLog::default()));
    tokio::spawn(async move {
        loop {
            let (stream, remote) = tokio::select! {
                _ = cancel.cancelled() => return,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of descriptors and the like: back off, do not spin.
                        warn!(error = %e, "TLS accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let acceptor = acceptor.clone();
            let endpoint = endpoint.clone();
            let metrics = metrics.clone();
            let failures = failures.clone();
            let cancel = cancel.child_token();
            tokio::spawn(async move {
                let handshake =
                    tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await;
                let stream = match handshake {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        failed(&metrics, &failures, remote, &e.to_string());
                        return;
                    }
                    Err(_) => {
                        failed(&metrics, &failures, remote, "handshake timed out");
                        return;
                    }
                };
                let local = SipAddr {
                    r#type: Some(SipTransport::Tls),
                    addr: advertised.into(),
                };
                let peer = SipAddr {
                    r#type: Some(SipTransport::Tls),
                    addr: remote.into(),
                };
                match TlsConnection::from_server_stream(stream, local, peer, Some(cancel)).await {
                    Ok(conn) => {
                        debug!(%remote, "TLS connection up");
                        endpoint
                            .transport_layer
                            .add_connection(SipConnection::Tls(conn));
                    }
                    Err(e) => warn!(%remote, error = %e, "TLS connection not usable"),
                }
            });
        }
    });
}

fn failed(metrics: &Metrics, failures: &Mutex<FailureLog>, remote: SocketAddr, why: &str) {
    metrics
        .sip_tls_handshake_failures
        .fetch_add(1, Ordering::Relaxed);
    let owed = match failures.lock() {
        Ok(mut log) => log.note(remote.ip(), Instant::now()),
        Err(_) => Some(1),
    };
    if let Some(count) = owed {
        warn!(source = %remote.ip(), failures = count, reason = why, "TLS handshake failed");
    }
}

/// Log pacing for failed handshakes: one line per source per [`LOG_EVERY`],
/// carrying how many failed since the previous line. Time is passed in.
#[derive(Debug, Default)]
pub struct FailureLog {
    sources: HashMap<IpAddr, Paced>,
}

#[derive(Debug, Clone, Copy)]
struct Paced {
    logged: Instant,
    unlogged: u64,
}

impl FailureLog {
    /// Note one failure from `source`; `Some(n)` when a line is owed now,
    /// `n` counting this failure and those not logged before it.
    pub fn note(&mut self, source: IpAddr, now: Instant) -> Option<u64> {
        if self.sources.len() >= MAX_LOGGED_SOURCES && !self.sources.contains_key(&source) {
            self.sources
                .retain(|_, p| now.duration_since(p.logged) < LOG_EVERY);
        }
        match self.sources.get_mut(&source) {
            Some(p) if now.duration_since(p.logged) < LOG_EVERY => {
                p.unlogged += 1;
                None
            }
            Some(p) => {
                let n = p.unlogged + 1;
                *p = Paced {
                    logged: now,
                    unlogged: 0,
                };
                Some(n)
            }
            None => {
                self.sources.insert(
                    source,
                    Paced {
                        logged: now,
                        unlogged: 0,
                    },
                );
                Some(1)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_source_per_minute_with_the_count() {
        let mut log = FailureLog::default();
        let t0 = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!(log.note(a, t0), Some(1));
        assert_eq!(log.note(b, t0), Some(1));
        for i in 1..=5 {
            assert_eq!(log.note(a, t0 + Duration::from_secs(i)), None);
        }
        assert_eq!(log.note(a, t0 + LOG_EVERY), Some(6));
        assert_eq!(log.note(a, t0 + LOG_EVERY + Duration::from_secs(1)), None);
    }

    #[test]
    fn unreadable_or_mismatched_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = SipTlsConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            cert_file: dir.path().join("nope.pem"),
            key_file: dir.path().join("nope.key"),
            ca_file: None,
        };
        let err = load(&missing).err().unwrap().to_string();
        assert!(
            err.contains("sip.tls.cert_file") && err.contains("nope.pem"),
            "{err}"
        );

        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").unwrap();
        let cfg = SipTlsConfig {
            cert_file: junk.clone(),
            key_file: junk.clone(),
            ..missing
        };
        let err = load(&cfg).err().unwrap().to_string();
        assert!(err.contains("sip.tls.cert_file"), "{err}");
    }
}

//! Credentials, read only from the environment or from secret files.
//!
//! A password in a YAML file ends up in version control and in support
//! tickets; configuration therefore names *where* a secret is
//! (`{ env: HUBSPOT_TOKEN }` or `{ file: /run/secrets/hubspot }`) and a
//! literal value is refused with an error saying so. The value is held in
//! [`Secret`], whose `Debug` does not print it.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer};
use thiserror::Error;

/// Where a credential comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// An environment variable's value.
    Env(String),
    /// A file's contents, trailing newline removed (Docker/Kubernetes
    /// secrets, systemd credentials).
    File(PathBuf),
}

/// Why a credential could not be read.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("environment variable {0} is not set")]
    EnvMissing(String),
    #[error("environment variable {0} is empty")]
    EnvEmpty(String),
    #[error("secret file {path}: {message}")]
    File { path: String, message: String },
}

impl SecretSource {
    /// Read the secret now.
    pub fn load(&self) -> Result<Secret, SecretError> {
        match self {
            SecretSource::Env(var) => match std::env::var(var) {
                Ok(v) if v.is_empty() => Err(SecretError::EnvEmpty(var.clone())),
                Ok(v) => Ok(Secret(v)),
                Err(_) => Err(SecretError::EnvMissing(var.clone())),
            },
            SecretSource::File(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| SecretError::File {
                    path: path.display().to_string(),
                    message: e.to_string(),
                })?;
                let value = text.trim_end_matches(['\n', '\r']).to_string();
                if value.is_empty() {
                    return Err(SecretError::File {
                        path: path.display().to_string(),
                        message: "file is empty".into(),
                    });
                }
                Ok(Secret(value))
            }
        }
    }
}

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Env(v) => write!(f, "env:{v}"),
            SecretSource::File(p) => write!(f, "file:{}", p.display()),
        }
    }
}

impl<'de> Deserialize<'de> for SecretSource {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Map {
                env: Option<String>,
                file: Option<PathBuf>,
            },
            Literal(serde::de::IgnoredAny),
        }
        match Raw::deserialize(d)? {
            Raw::Map {
                env: Some(var),
                file: None,
            } => Ok(SecretSource::Env(var)),
            Raw::Map {
                env: None,
                file: Some(path),
            } => Ok(SecretSource::File(path)),
            Raw::Map { .. } => Err(serde::de::Error::custom(
                "a secret is `{ env: VARIABLE }` or `{ file: /path }`, exactly one of them",
            )),
            Raw::Literal(_) => Err(serde::de::Error::custom(
                "credentials cannot be written in the configuration; use `{ env: VARIABLE }` or `{ file: /path }`",
            )),
        }
    }
}

/// A credential in memory. `Debug` and `Display` print `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a value obtained elsewhere (a token an OAuth2 server returned).
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Holder {
        token: SecretSource,
    }

    #[test]
    fn sources_parse_and_literals_are_refused() {
        let h: Holder = serde_saphyr::from_str("token: { env: VB_TEST_TOKEN_A }").expect("env");
        assert_eq!(h.token, SecretSource::Env("VB_TEST_TOKEN_A".into()));
        let h: Holder = serde_saphyr::from_str("token: { file: /run/x }").expect("file");
        assert_eq!(h.token, SecretSource::File("/run/x".into()));
        let err = serde_saphyr::from_str::<Holder>("token: hunter2").expect_err("literal");
        assert!(err.to_string().contains("cannot be written"), "{err}");
        assert!(serde_saphyr::from_str::<Holder>("token: { env: A, file: /b }").is_err());
    }

    #[test]
    fn loads_from_env_and_file() {
        std::env::set_var("VB_TEST_TOKEN_B", "s3cret");
        let s = SecretSource::Env("VB_TEST_TOKEN_B".into())
            .load()
            .expect("set");
        assert_eq!(s.expose(), "s3cret");
        assert_eq!(format!("{s:?} {s}"), "Secret(***) ***");
        assert_eq!(
            SecretSource::Env("VB_TEST_TOKEN_UNSET_C".into()).load(),
            Err(SecretError::EnvMissing("VB_TEST_TOKEN_UNSET_C".into()))
        );
        let dir = std::env::temp_dir().join(format!("vb-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("token");
        std::fs::write(&path, "from-file\n").expect("write");
        let s = SecretSource::File(path.clone()).load().expect("file");
        assert_eq!(s.expose(), "from-file");
        std::fs::write(&path, "\n").expect("write");
        assert!(SecretSource::File(path).load().is_err());
        assert!(SecretSource::File(dir.join("missing")).load().is_err());
        let _ = std::fs::remove_dir_all(dir);
    }
}

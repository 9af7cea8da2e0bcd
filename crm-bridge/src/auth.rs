//! How connectors authenticate: bearer token, HTTP basic, an API-key header,
//! or OAuth2 client credentials (RFC 6749 §4.4) with the token cached and
//! refreshed before it expires or when the API answers 401.
//!
//! Secrets are read once at start-up (so a missing variable stops the start
//! rather than the first call) and never logged.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderName, HeaderValue};
use reqwest::{Method, RequestBuilder};
use serde::Deserialize;
use serde_json::Value;

use crate::error::CrmError;
use crate::http::HttpClient;
use crate::secret::{Secret, SecretSource};

/// A value that is either plain text in the configuration or a secret
/// source (user names and client ids need not be secret, but may be).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueSource {
    Plain(String),
    Secret(SecretSource),
}

impl<'de> Deserialize<'de> for ValueSource {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Plain(String),
            Map(serde_json::Map<String, Value>),
        }
        match Raw::deserialize(d)? {
            Raw::Plain(s) => Ok(ValueSource::Plain(s)),
            Raw::Map(m) => serde_json::from_value::<SecretSource>(Value::Object(m))
                .map(ValueSource::Secret)
                .map_err(serde::de::Error::custom),
        }
    }
}

impl ValueSource {
    pub fn load(&self) -> Result<String, crate::secret::SecretError> {
        match self {
            ValueSource::Plain(s) => Ok(s.clone()),
            ValueSource::Secret(src) => src.load().map(|s| s.expose().to_string()),
        }
    }
}

/// Where OAuth2 client credentials go in the token request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// HTTP basic (RFC 6749 §2.3.1, what servers must support).
    #[default]
    Basic,
    /// `client_id` and `client_secret` form fields.
    Body,
}

/// The `auth:` block of a system.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum AuthConfig {
    None,
    Bearer {
        token: SecretSource,
    },
    Basic {
        username: ValueSource,
        password: SecretSource,
    },
    ApiKey {
        header: String,
        value: SecretSource,
    },
    Oauth2ClientCredentials {
        token_url: String,
        client_id: ValueSource,
        client_secret: SecretSource,
        #[serde(default)]
        scope: Option<String>,
        #[serde(default)]
        audience: Option<String>,
        #[serde(default)]
        client_auth: ClientAuth,
    },
}

#[derive(Debug)]
struct CachedToken {
    value: Secret,
    /// `None`: the server gave no lifetime; kept until a 401.
    refresh_at: Option<Instant>,
}

#[derive(Debug)]
struct OAuth2 {
    token_url: String,
    client_id: String,
    client_secret: Secret,
    scope: Option<String>,
    audience: Option<String>,
    client_auth: ClientAuth,
    http: HttpClient,
    token: tokio::sync::Mutex<Option<CachedToken>>,
}

#[derive(Debug)]
enum Kind {
    None,
    Bearer(Secret),
    Basic(String, Secret),
    Header(HeaderName, Secret),
    OAuth2(Arc<OAuth2>),
}

/// A system's authentication, ready to apply to requests.
#[derive(Debug, Clone)]
pub struct Auth {
    kind: Arc<Kind>,
}

impl Auth {
    pub fn none() -> Auth {
        Auth {
            kind: Arc::new(Kind::None),
        }
    }

    /// Read the secrets and prepare. `http` is the system's client, used for
    /// the token endpoint.
    pub fn from_config(
        system: &str,
        config: &AuthConfig,
        http: &HttpClient,
    ) -> Result<Auth, CrmError> {
        let invalid = |message: String| CrmError::Invalid {
            system: system.to_string(),
            message,
        };
        let secret = |s: &SecretSource| s.load().map_err(|e| invalid(format!("auth: {e}")));
        let plain = |s: &ValueSource| s.load().map_err(|e| invalid(format!("auth: {e}")));
        let kind = match config {
            AuthConfig::None => Kind::None,
            AuthConfig::Bearer { token } => Kind::Bearer(secret(token)?),
            AuthConfig::Basic { username, password } => {
                Kind::Basic(plain(username)?, secret(password)?)
            }
            AuthConfig::ApiKey { header, value } => {
                let name = HeaderName::from_bytes(header.as_bytes())
                    .map_err(|_| invalid(format!("auth: `{header}` is not a header name")))?;
                Kind::Header(name, secret(value)?)
            }
            AuthConfig::Oauth2ClientCredentials {
                token_url,
                client_id,
                client_secret,
                scope,
                audience,
                client_auth,
            } => {
                reqwest::Url::parse(token_url)
                    .map_err(|e| invalid(format!("auth: token_url `{token_url}`: {e}")))?;
                Kind::OAuth2(Arc::new(OAuth2 {
                    token_url: token_url.clone(),
                    client_id: plain(client_id)?,
                    client_secret: secret(client_secret)?,
                    scope: scope.clone(),
                    audience: audience.clone(),
                    client_auth: *client_auth,
                    http: http.clone(),
                    token: tokio::sync::Mutex::new(None),
                }))
            }
        };
        Ok(Auth {
            kind: Arc::new(kind),
        })
    }

    /// Add credentials to a request (fetching an OAuth2 token if needed).
    pub async fn apply(&self, req: RequestBuilder) -> Result<RequestBuilder, CrmError> {
        Ok(match &*self.kind {
            Kind::None => req,
            Kind::Bearer(t) => req.bearer_auth(t.expose()),
            Kind::Basic(u, p) => req.basic_auth(u, Some(p.expose())),
            Kind::Header(name, v) => {
                let mut value =
                    HeaderValue::from_str(v.expose()).map_err(|_| CrmError::Invalid {
                        system: String::new(),
                        message: "API key contains characters not allowed in a header".into(),
                    })?;
                value.set_sensitive(true);
                req.header(name.clone(), value)
            }
            Kind::OAuth2(o) => req.bearer_auth(o.token().await?.expose()),
        })
    }

    /// Whether a 401 may be cured by fetching a new token.
    pub fn can_refresh(&self) -> bool {
        matches!(&*self.kind, Kind::OAuth2(_))
    }

    /// Drop the cached token (the API said 401).
    pub async fn invalidate(&self) {
        if let Kind::OAuth2(o) = &*self.kind {
            *o.token.lock().await = None;
        }
    }
}

impl OAuth2 {
    async fn token(&self) -> Result<Secret, CrmError> {
        // One refresh at a time; the others wait and reuse it.
        let mut slot = self.token.lock().await;
        if let Some(t) = slot.as_ref() {
            if t.refresh_at.is_none_or(|at| Instant::now() < at) {
                return Ok(t.value.clone());
            }
        }
        let fresh = self.fetch().await?;
        let value = fresh.value.clone();
        *slot = Some(fresh);
        Ok(value)
    }

    async fn fetch(&self) -> Result<CachedToken, CrmError> {
        let system = self.http.system().to_string();
        let mut form: Vec<(&str, &str)> = vec![("grant_type", "client_credentials")];
        if let Some(scope) = &self.scope {
            form.push(("scope", scope));
        }
        if let Some(aud) = &self.audience {
            form.push(("audience", aud));
        }
        let mut req = self.http.request(Method::POST, &self.token_url);
        match self.client_auth {
            ClientAuth::Basic => {
                req = req.basic_auth(&self.client_id, Some(self.client_secret.expose()));
            }
            ClientAuth::Body => {
                form.push(("client_id", &self.client_id));
                form.push(("client_secret", self.client_secret.expose()));
            }
        }
        let reply = self
            .http
            .send(
                req.form(&form).header("Accept", "application/json"),
                &[400, 401],
            )
            .await
            .map_err(|e| match e {
                CrmError::Auth { message, .. } => CrmError::Auth {
                    system: system.clone(),
                    message: format!("token endpoint: {message}"),
                },
                other => other,
            })?;
        if reply.status != 200 {
            // RFC 6749 §5.2 error response.
            let code = reply
                .body
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("unknown error");
            let desc = reply
                .body
                .get("error_description")
                .and_then(Value::as_str)
                .map(|d| format!(": {d}"))
                .unwrap_or_default();
            return Err(CrmError::Auth {
                system,
                message: format!("token endpoint refused the client credentials ({code}{desc})"),
            });
        }
        let token = reply
            .body
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| CrmError::Auth {
                system: system.clone(),
                message: "token endpoint reply has no access_token".into(),
            })?;
        if let Some(kind) = reply.body.get("token_type").and_then(Value::as_str) {
            if !kind.eq_ignore_ascii_case("bearer") {
                return Err(CrmError::Auth {
                    system,
                    message: format!(
                        "token endpoint issued a `{kind}` token; only bearer tokens are supported"
                    ),
                });
            }
        }
        let lifetime = match reply.body.get("expires_in") {
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => s.parse().ok(),
            _ => None,
        };
        // Refresh a little early so a request never carries a token that
        // expires on the way.
        let refresh_at = lifetime.map(|secs| {
            let margin = (secs / 10).clamp(1, 60);
            Instant::now() + Duration::from_secs(secs.saturating_sub(margin))
        });
        Ok(CachedToken {
            value: Secret::new(token),
            refresh_at,
        })
    }
}

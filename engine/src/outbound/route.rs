//! Where an outbound INVITE goes: the Request-URI, From, P-Asserted-Identity,
//! the proxy and the digest credentials, from the request's number, caller
//! id and `via` (a `registration.accounts` entry by name).

use crate::config::{AccountConfig, Config};
use crate::sip::DialCredential;

/// Why a call cannot be routed (the attempt fails without an INVITE).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RouteError {
    #[error("no account named `{0}` in registration.accounts")]
    UnknownVia(String),
    #[error("account `{0}`: {1}")]
    Password(String, String),
    #[error("`{0}` is not a SIP URI and no `via` gives it a host")]
    NoHost(String),
    #[error("`{0}` is not a number or SIP URI")]
    BadNumber(String),
}

/// The addressing of one outbound INVITE.
#[derive(Debug, Clone)]
pub struct Route {
    pub target: String,
    pub from: String,
    pub asserted: Option<String>,
    pub proxy: Option<String>,
    pub credential: Option<DialCredential>,
}

/// The host (and port) part of a `sip:` URI, without parameters.
fn host_of(uri: &str) -> &str {
    let rest = uri
        .strip_prefix("sips:")
        .or_else(|| uri.strip_prefix("sip:"))
        .unwrap_or(uri);
    let rest = rest.rsplit('@').next().unwrap_or(rest);
    rest.split([';', '?']).next().unwrap_or(rest)
}

/// The user part for a number: digits, `+` and the visual separators
/// dropped (`+1 (555) 010-0` → `+15550100`).
fn user_part(number: &str) -> Result<String, RouteError> {
    let user: String = number.chars().filter(|c| !" -().".contains(*c)).collect();
    let ok = !user.is_empty()
        && user
            .chars()
            .enumerate()
            .all(|(i, c)| c.is_ascii_digit() || (i == 0 && c == '+') || c == '*' || c == '#');
    if ok {
        Ok(user)
    } else {
        Err(RouteError::BadNumber(number.to_string()))
    }
}

/// Address a call to `number` from `caller_id`, through the account named
/// `via` or directly (then `number` must be a SIP URI).
pub fn route(
    config: &Config,
    number: &str,
    caller_id: &str,
    via: Option<&str>,
    local_host: &str,
) -> Result<Route, RouteError> {
    let number = number.trim();
    let account: Option<&AccountConfig> = match via {
        Some(name) => Some(
            config
                .registration
                .accounts
                .iter()
                .find(|a| a.via_name() == name)
                .ok_or_else(|| RouteError::UnknownVia(name.to_string()))?,
        ),
        None => None,
    };
    let is_uri = number.starts_with("sip:") || number.starts_with("sips:");
    let host = match account {
        Some(a) => host_of(&a.registrar).to_string(),
        None => local_host.to_string(),
    };
    let target = if is_uri {
        number.to_string()
    } else {
        match account {
            Some(_) => format!("sip:{}@{host}", user_part(number)?),
            None => return Err(RouteError::NoHost(number.to_string())),
        }
    };
    let caller_user = user_part(caller_id).unwrap_or_else(|_| "voxbridge".to_string());
    let from = format!("sip:{caller_user}@{host}");
    let credential = match account {
        Some(a) => Some(DialCredential {
            username: a.username.clone(),
            password: a
                .password()
                .map_err(|e| RouteError::Password(a.via_name().to_string(), e))?,
            auth_username: a.auth_username.clone(),
        }),
        None => None,
    };
    Ok(Route {
        target,
        asserted: Some(from.clone()),
        from,
        proxy: account.map(|a| {
            a.outbound_proxy
                .clone()
                .unwrap_or_else(|| a.registrar.clone())
        }),
        credential,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_with_account() -> Config {
        let mut c = Config::default();
        c.registration.accounts.push(AccountConfig {
            registrar: "sip:pbx.example.com:5060".into(),
            username: "bot".into(),
            auth_username: None,
            password_env: Some("VOXBRIDGE_TEST_ROUTE_PW".into()),
            password_file: None,
            expires_secs: 300,
            name: Some("trunk-1".into()),
            outbound_proxy: Some("sip:127.0.0.1:5099".into()),
            srtp: None,
        });
        c
    }

    #[test]
    fn a_number_through_an_account_goes_to_its_host_and_proxy() {
        std::env::set_var("VOXBRIDGE_TEST_ROUTE_PW", "s3cret");
        let r = route(
            &config_with_account(),
            "+1 (555) 010-0200",
            "+15550100",
            Some("trunk-1"),
            "127.0.0.1:5060",
        )
        .unwrap();
        assert_eq!(r.target, "sip:+15550100200@pbx.example.com:5060");
        assert_eq!(r.from, "sip:+15550100@pbx.example.com:5060");
        assert_eq!(r.asserted.as_deref(), Some(r.from.as_str()));
        assert_eq!(r.proxy.as_deref(), Some("sip:127.0.0.1:5099"));
        let cred = r.credential.unwrap();
        assert_eq!(
            (cred.username.as_str(), cred.password.as_str()),
            ("bot", "s3cret")
        );
    }

    #[test]
    fn bad_requests_are_refused_not_dialled() {
        let c = config_with_account();
        assert_eq!(
            route(&c, "+1555", "+1", Some("nope"), "h").unwrap_err(),
            RouteError::UnknownVia("nope".into())
        );
        assert!(matches!(
            route(&c, "+15550100", "+1", None, "h"),
            Err(RouteError::NoHost(_))
        ));
        assert!(matches!(
            route(&c, "call me; rm -rf", "+1", Some("trunk-1"), "h"),
            Err(RouteError::BadNumber(_)) | Err(RouteError::Password(..))
        ));
        let direct = route(
            &c,
            "sip:callee@127.0.0.1:5091",
            "+15550100",
            None,
            "10.0.0.1:5060",
        )
        .unwrap();
        assert_eq!(direct.target, "sip:callee@127.0.0.1:5091");
        assert_eq!(direct.from, "sip:+15550100@10.0.0.1:5060");
        assert!(direct.proxy.is_none() && direct.credential.is_none());
    }
}

//! Which SRTP policy (`off`, `optional`, `required`) an inbound call is
//! judged by: the registration account it was called on (the To user is
//! the account's), else the trunk it came from (the source is in
//! `trunk.allow`), else the listener's `sip.srtp`.

use std::net::IpAddr;

use crate::acl::Allowlist;
use crate::config::Config;
use crate::sdp::SrtpPolicy;

/// The policies of one configuration, ready to judge calls.
#[derive(Debug, Clone)]
pub struct SrtpPolicies {
    default: SrtpPolicy,
    trunk: Option<(Allowlist, SrtpPolicy)>,
    accounts: Vec<(String, SrtpPolicy)>,
}

impl SrtpPolicies {
    pub fn new(config: &Config) -> SrtpPolicies {
        // `trunk.allow` was checked when the config loaded; an open list
        // (no entries) names no trunk to apply a policy to.
        let trunk = config.trunk.srtp.and_then(|policy| {
            Allowlist::parse(&config.trunk.allow)
                .ok()
                .filter(|list| !list.is_open())
                .map(|list| (list, policy))
        });
        let accounts = config
            .registration
            .accounts
            .iter()
            .filter_map(|a| a.srtp.map(|p| (a.username.clone(), p)))
            .collect();
        SrtpPolicies {
            default: config.sip.srtp,
            trunk,
            accounts,
        }
    }

    /// The policy for a call from `source` to the `to` URI.
    pub fn for_call(&self, source: Option<IpAddr>, to: &str) -> SrtpPolicy {
        if let Some(user) = uri_user(to) {
            if let Some((_, p)) = self.accounts.iter().find(|(name, _)| name == user) {
                return *p;
            }
        }
        match (&self.trunk, source) {
            (Some((list, p)), Some(ip)) if list.allows(ip) => *p,
            _ => self.default,
        }
    }
}

/// `bot` of `sip:bot@host`, `<sips:bot@host:5061>;tag=x`.
fn uri_user(uri: &str) -> Option<&str> {
    let uri = uri.trim().trim_start_matches('<');
    let rest = uri
        .strip_prefix("sip:")
        .or_else(|| uri.strip_prefix("sips:"))?;
    let (user, _) = rest.split_once('@')?;
    // `user;param` and `user:password` carry more than the user.
    Some(user.split([';', ':']).next().unwrap_or(user))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AccountConfig;

    fn account(user: &str, srtp: Option<SrtpPolicy>) -> AccountConfig {
        AccountConfig {
            registrar: "sip:pbx.example.com".into(),
            username: user.into(),
            auth_username: None,
            password_env: Some("X".into()),
            password_file: None,
            expires_secs: 300,
            name: None,
            outbound_proxy: None,
            srtp,
        }
    }

    #[test]
    fn account_then_trunk_then_listener() {
        let mut config = Config::default();
        assert_eq!(config.sip.srtp, SrtpPolicy::Optional);
        config.sip.srtp = SrtpPolicy::Off;
        config.trunk.allow = vec!["192.0.2.0/24".into()];
        config.trunk.srtp = Some(SrtpPolicy::Required);
        config.registration.accounts = vec![
            account("2000", Some(SrtpPolicy::Optional)),
            account("3000", None),
        ];
        let p = SrtpPolicies::new(&config);
        let carrier = Some("192.0.2.7".parse().unwrap());
        let other = Some("198.51.100.1".parse().unwrap());
        assert_eq!(p.for_call(carrier, "sip:bot@vb"), SrtpPolicy::Required);
        assert_eq!(p.for_call(carrier, "<sip:2000@vb>"), SrtpPolicy::Optional);
        // An account without its own policy leaves it to the trunk.
        assert_eq!(p.for_call(carrier, "sip:3000@vb"), SrtpPolicy::Required);
        assert_eq!(p.for_call(other, "sips:2000;x=y@vb"), SrtpPolicy::Optional);
        assert_eq!(p.for_call(other, "sip:bot@vb"), SrtpPolicy::Off);
        assert_eq!(p.for_call(None, "tel:+1555"), SrtpPolicy::Off);
        // No trunk list: `trunk.srtp` has no one to apply to.
        config.trunk.allow.clear();
        assert_eq!(
            SrtpPolicies::new(&config).for_call(carrier, "sip:bot@vb"),
            SrtpPolicy::Off
        );
    }
}

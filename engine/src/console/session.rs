//! Console sessions: a random id in an HttpOnly, SameSite=Strict cookie,
//! an expiry, and the CSRF token every state-changing request must carry.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::RngCore;
use subtle::ConstantTimeEq;

use super::auth::Identity;

/// The session cookie's name.
pub const COOKIE: &str = "vb_session";
/// The cookie that carries the login form's CSRF token before a session
/// exists.
pub const LOGIN_COOKIE: &str = "vb_login";

/// Sessions kept at most (the oldest goes first past this).
const MAX_SESSIONS: usize = 10_000;

/// 32 random bytes, hex: session ids and CSRF tokens. `rand`'s thread RNG
/// is a CSPRNG seeded from the OS.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Two secrets compared in constant time.
pub fn same_secret(a: &str, b: &str) -> bool {
    !a.is_empty() && a.as_bytes().ct_eq(b.as_bytes()).into()
}

#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    pub identity: Identity,
    pub csrf: String,
    pub expires: Instant,
}

#[derive(Debug)]
pub struct Sessions {
    ttl: Duration,
    map: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    pub fn new(ttl: Duration) -> Sessions {
        Sessions {
            ttl,
            map: Mutex::default(),
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new session for a login.
    pub fn create(&self, identity: Identity, now: Instant) -> Session {
        let session = Session {
            id: random_token(),
            identity,
            csrf: random_token(),
            expires: now + self.ttl,
        };
        let mut map = self.lock();
        map.retain(|_, s| s.expires > now);
        if map.len() >= MAX_SESSIONS {
            if let Some(oldest) = map.values().min_by_key(|s| s.expires).map(|s| s.id.clone()) {
                map.remove(&oldest);
            }
        }
        map.insert(session.id.clone(), session.clone());
        session
    }

    /// The live session with this id.
    pub fn get(&self, id: &str, now: Instant) -> Option<Session> {
        let mut map = self.lock();
        match map.get(id) {
            Some(s) if s.expires > now => Some(s.clone()),
            Some(_) => {
                map.remove(id);
                None
            }
            None => None,
        }
    }

    pub fn remove(&self, id: &str) {
        self.lock().remove(id);
    }
}

/// The value of cookie `name` in a `Cookie` request header.
pub fn cookie_value(header: &str, name: &str) -> Option<String> {
    cookie::Cookie::split_parse(header)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_string())
}

/// A `Set-Cookie` value for the console: HttpOnly, SameSite=Strict, on
/// `/console` only; `max_age` zero deletes it.
pub fn set_cookie(name: &str, value: &str, max_age: Duration) -> String {
    cookie::Cookie::build((name, value))
        .path("/console")
        .http_only(true)
        .same_site(cookie::SameSite::Strict)
        .max_age(cookie::time::Duration::seconds(max_age.as_secs() as i64))
        .build()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConsoleRole;

    fn who() -> Identity {
        Identity {
            name: "vera".into(),
            role: ConsoleRole::Viewer,
        }
    }

    #[test]
    fn sessions_expire_and_ids_are_random() {
        let s = Sessions::new(Duration::from_secs(60));
        let t = Instant::now();
        let a = s.create(who(), t);
        let b = s.create(who(), t);
        assert_ne!(a.id, b.id);
        assert_ne!(a.csrf, a.id);
        assert_eq!(a.id.len(), 64);
        assert!(s.get(&a.id, t + Duration::from_secs(59)).is_some());
        assert!(s.get(&a.id, t + Duration::from_secs(60)).is_none());
        assert!(s.get("made-up", t).is_none());
        s.remove(&b.id);
        assert!(s.get(&b.id, t).is_none());
    }

    #[test]
    fn cookies_are_http_only_and_strict() {
        let c = set_cookie(COOKIE, "abc", Duration::from_secs(3600));
        assert!(c.contains("HttpOnly"), "{c}");
        assert!(c.contains("SameSite=Strict"), "{c}");
        assert!(c.contains("Path=/console"), "{c}");
        assert!(c.contains("Max-Age=3600"), "{c}");
        assert_eq!(
            cookie_value("a=1; vb_session=abc; b=2", COOKIE).as_deref(),
            Some("abc")
        );
        assert_eq!(cookie_value("garbage;;=", COOKIE), None);
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("", ""), "an empty token never matches");
    }
}

//! Who may use the console: users from `console.users` with argon2
//! password hashes, and the admin token from `VOXBRIDGE_CONSOLE_TOKEN`.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use subtle::ConstantTimeEq;
use thiserror::Error;

use crate::config::{ConsoleConfig, ConsoleRole};

#[derive(Debug, Error)]
pub enum AuthError {
    #[error("the password is empty")]
    Empty,
    #[error("hashing the password failed: {0}")]
    Hash(String),
}

/// Who a request comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub role: ConsoleRole,
}

impl Identity {
    /// Viewers never see whole phone numbers.
    pub fn sees_numbers(&self) -> bool {
        self.role >= ConsoleRole::Operator
    }
}

/// The name a token login shows.
pub const TOKEN_USER: &str = "token";

/// An argon2id PHC string for `password` (Argon2's default parameters, a
/// random salt), what `console.users[].password_hash` holds.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    if password.is_empty() {
        return Err(AuthError::Empty);
    }
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// The users and the token, checked at each login.
#[derive(Debug, Clone)]
pub struct Users {
    users: Vec<(String, String, ConsoleRole)>,
    token: Option<String>,
    /// Verified against when the name is unknown, so a wrong name costs the
    /// same time as a wrong password and names cannot be probed.
    decoy: String,
}

impl Users {
    pub fn new(config: &ConsoleConfig) -> Users {
        Users {
            users: config
                .users
                .iter()
                .map(|u| (u.name.clone(), u.password_hash.clone(), u.role))
                .collect(),
            token: config.token.clone().filter(|t| !t.is_empty()),
            decoy: hash_password("decoy password").unwrap_or_default(),
        }
    }

    /// The identity for a name and password, or None. Slow on purpose
    /// (argon2): call it off the async threads.
    pub fn verify(&self, name: &str, password: &str) -> Option<Identity> {
        if self.token_matches(password) {
            return Some(Identity {
                name: TOKEN_USER.to_string(),
                role: ConsoleRole::Admin,
            });
        }
        let found = self.users.iter().find(|(n, _, _)| n == name);
        let hash = found.map(|(_, h, _)| h.as_str()).unwrap_or(&self.decoy);
        let ok = PasswordHash::new(hash)
            .map(|h| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false);
        match found {
            Some((n, _, role)) if ok => Some(Identity {
                name: n.clone(),
                role: *role,
            }),
            _ => None,
        }
    }

    /// The token, compared in constant time.
    pub fn token_matches(&self, candidate: &str) -> bool {
        match &self.token {
            Some(t) => t.as_bytes().ct_eq(candidate.as_bytes()).into(),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConsoleUser;

    fn config(token: Option<&str>) -> ConsoleConfig {
        ConsoleConfig {
            enabled: true,
            users: vec![
                ConsoleUser {
                    name: "vera".into(),
                    password_hash: hash_password("viewer pass").unwrap(),
                    role: ConsoleRole::Viewer,
                },
                ConsoleUser {
                    name: "otto".into(),
                    password_hash: hash_password("operator pass").unwrap(),
                    role: ConsoleRole::Operator,
                },
            ],
            token: token.map(String::from),
            ..Default::default()
        }
    }

    #[test]
    fn the_right_password_logs_in_with_its_role() {
        let users = Users::new(&config(None));
        let vera = users.verify("vera", "viewer pass").unwrap();
        assert_eq!(vera.role, ConsoleRole::Viewer);
        assert!(!vera.sees_numbers());
        assert!(users
            .verify("otto", "operator pass")
            .unwrap()
            .sees_numbers());
    }

    #[test]
    fn wrong_passwords_names_and_hashes_are_refused() {
        let users = Users::new(&config(None));
        assert!(users.verify("vera", "operator pass").is_none());
        assert!(users.verify("nobody", "viewer pass").is_none());
        assert!(users.verify("vera", "").is_none());
        assert!(
            !users.token_matches(""),
            "no token configured: nothing matches"
        );
        let mut broken = config(None);
        broken.users[0].password_hash = "not a hash".into();
        assert!(Users::new(&broken).verify("vera", "viewer pass").is_none());
    }

    #[test]
    fn the_token_logs_in_as_admin() {
        let users = Users::new(&config(Some("s3cret-token")));
        let id = users.verify("", "s3cret-token").unwrap();
        assert_eq!(id.role, ConsoleRole::Admin);
        assert!(users.verify("", "s3cret-toke").is_none());
    }

    #[test]
    fn hashes_are_salted_phc_strings() {
        let a = hash_password("same").unwrap();
        let b = hash_password("same").unwrap();
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert_ne!(a, b, "a random salt each time");
        assert!(matches!(hash_password(""), Err(AuthError::Empty)));
    }
}

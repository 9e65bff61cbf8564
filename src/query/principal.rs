//! Who is calling. One model for every wire: users come from the configuration, and each front only
//! extracts the credentials its clients send (a Bearer token, HTTP Basic, a Looker session, none).

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// A user every dialect knows: Basic auth uses name and password, Bearer/token auth uses token.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub name: String,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub token: Option<String>,
    /// Admins see every user's jobs where a vendor allows it (Kylin).
    #[serde(default)]
    pub admin: bool,
}

/// Whom a job belongs to. Typed, so that no credential string can pose as an anonymous caller.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Principal {
    /// A named user: a configured one, or (with no users configured) the name the caller presented.
    User(String),
    /// A caller that presented no credentials where its wire allows that (AsterixDB without users):
    /// every such caller from one address is one principal, on every wire.
    Anonymous(IpAddr),
}

impl Principal {
    pub fn user(name: impl Into<String>) -> Principal {
        Principal::User(name.into())
    }

    /// The name a wire shows for this principal (Kylin's `submitter`, log lines).
    pub fn name(&self) -> String {
        match self {
            Principal::User(name) => name.clone(),
            Principal::Anonymous(ip) => format!("anonymous@{ip}"),
        }
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// An authenticated caller: its principal and whether it is an admin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub principal: Principal,
    pub admin: bool,
}

impl Caller {
    /// Whether this caller may see a job owned by `owner` on a wire that lets admins see every job.
    pub fn admin_may_see(&self, owner: &Principal) -> bool {
        self.admin || self.principal == *owner
    }
}

/// The name of the admin account that exists when no users are configured (Kylin's default `ADMIN`).
pub const DEFAULT_ADMIN: &str = "ADMIN";

/// The one place that decides who a caller is (after GreptimeDB's `UserProvider`).
#[derive(Clone, Debug, Default)]
pub struct Principals {
    users: Vec<User>,
}

impl Principals {
    pub fn new(users: Vec<User>) -> Principals {
        Principals { users }
    }

    /// No users are configured: credentials are not checked, and the name presented is the principal.
    pub fn is_open(&self) -> bool {
        self.users.is_empty()
    }

    /// The caller a Bearer (or Looker `token`) token names: a configured user's token, or with no
    /// users configured, the token itself as a user name.
    pub fn by_token(&self, token: &str) -> Option<Caller> {
        let token = token.trim();
        if token.is_empty() {
            return None;
        }
        if self.is_open() {
            return Some(Self::open_caller(token));
        }
        self.users
            .iter()
            .find(|u| u.token.as_deref() == Some(token))
            .map(Self::caller)
    }

    /// The caller a name and password name: a configured user (names match ignoring case, as Kylin's
    /// user manager does), or with no users configured, the name itself.
    pub fn by_password(&self, name: &str, password: &str) -> Option<Caller> {
        if name.is_empty() {
            return None;
        }
        if self.is_open() {
            return Some(Self::open_caller(name));
        }
        self.users
            .iter()
            .find(|u| u.name.eq_ignore_ascii_case(name) && u.password.as_deref() == Some(password))
            .map(Self::caller)
    }

    /// A configured user by name (Looker's sudo login); with none configured, any name.
    pub fn by_name(&self, name: &str) -> Option<Caller> {
        if self.is_open() {
            return (!name.is_empty()).then(|| Self::open_caller(name));
        }
        self.users
            .iter()
            .find(|u| u.name.eq_ignore_ascii_case(name))
            .map(Self::caller)
    }

    /// The configured users, in configuration order.
    pub fn users(&self) -> &[User] {
        &self.users
    }

    /// A caller with no credentials at all, from `ip`.
    pub fn anonymous(ip: IpAddr) -> Caller {
        Caller {
            principal: Principal::Anonymous(ip),
            admin: false,
        }
    }

    fn caller(user: &User) -> Caller {
        Caller {
            principal: Principal::User(user.name.clone()),
            admin: user.admin,
        }
    }

    /// With no users configured, the default admin's name is spelt one way on every wire.
    fn open_caller(name: &str) -> Caller {
        let admin = name.eq_ignore_ascii_case(DEFAULT_ADMIN);
        let name = if admin { DEFAULT_ADMIN } else { name };
        Caller {
            principal: Principal::User(name.to_string()),
            admin,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> User {
        User {
            name: "alice".into(),
            password: Some("pw".into()),
            token: Some("alice-token".into()),
            admin: false,
        }
    }

    #[test]
    fn configured_users_are_found_by_each_credential() {
        let p = Principals::new(vec![alice()]);
        let alice = Principal::user("alice");
        assert_eq!(
            p.by_token("alice-token").map(|c| c.principal),
            Some(alice.clone())
        );
        assert_eq!(
            p.by_password("ALICE", "pw").map(|c| c.principal),
            Some(alice)
        );
        assert_eq!(p.by_password("alice", "wrong"), None);
        assert_eq!(p.by_token("alice"), None);
    }

    #[test]
    fn no_credential_string_is_the_anonymous_principal() {
        let open = Principals::default();
        let ip: IpAddr = [127, 0, 0, 1].into();
        for forged in ["anonymous@127.0.0.1", "127.0.0.1", "anonymous"] {
            assert_ne!(
                open.by_token(forged).map(|c| c.principal),
                Some(Principal::Anonymous(ip))
            );
        }
        assert_eq!(open.by_password("admin", "x").map(|c| c.admin), Some(true));
        assert_eq!(
            open.by_token("admin").map(|c| c.principal),
            Some(Principal::user("ADMIN"))
        );
    }
}

//! Looker API sessions: `POST /login` trades a client id and secret for an access token valid for an
//! hour; API calls present it as `Authorization: Bearer X` or `token X`; logout revokes it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::engine::SideTable;
use crate::query::{Principal, Principals};

/// How long an access token lives (Looker's `expires_in`).
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// The live access tokens and whom they belong to.
pub struct Sessions {
    principals: Arc<Principals>,
    tokens: Mutex<HashMap<String, Session>>,
    lifetime: Option<Duration>,
    /// In a cluster: the sessions every instance sees (a token from one instance works on all, and
    /// a logout anywhere ends it everywhere).
    shared: Option<SideTable<SharedSession>>,
}

/// A session as the instances of a cluster share it.
#[derive(Serialize, Deserialize)]
pub struct SharedSession {
    owner: Principal,
    /// Milliseconds since the Unix epoch.
    expires: i64,
}

#[derive(Clone)]
struct Session {
    owner: Principal,
    expires: Instant,
}

impl Sessions {
    pub fn new(principals: Arc<Principals>) -> Sessions {
        Sessions {
            principals,
            tokens: Mutex::default(),
            lifetime: None,
            shared: None,
        }
    }

    /// Keeps the sessions in `table` when the engine's store is shared by a cluster.
    pub fn shared_through(mut self, table: SideTable<SharedSession>) -> Sessions {
        self.shared = table.shared().then_some(table);
        self
    }

    /// Tokens that expire after `lifetime` instead of an hour (for tests of expiry).
    pub fn with_lifetime(mut self, lifetime: Duration) -> Sessions {
        self.lifetime = Some(lifetime);
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.tokens.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Who may log in, and as whom.
    pub fn principals(&self) -> &Principals {
        &self.principals
    }

    /// Checks the credentials (any are accepted when no users are configured) and opens a session.
    pub fn login(&self, client_id: &str, client_secret: &str) -> Option<String> {
        let owner = self
            .principals
            .by_password(client_id, client_secret)?
            .principal;
        Some(self.open(owner))
    }

    /// Opens a session for `owner` (a login, or an admin's sudo as `owner`).
    pub fn open(&self, owner: Principal) -> String {
        let token = format!(
            "{:032x}{:08x}",
            uuid::Uuid::new_v4().as_u128(),
            uuid::Uuid::new_v4().as_u128() as u32
        );
        let lifetime = self.lifetime.unwrap_or(TOKEN_LIFETIME);
        if let Some(shared) = &self.shared {
            let expires = chrono::Utc::now()
                .timestamp_millis()
                .saturating_add(i64::try_from(lifetime.as_millis()).unwrap_or(i64::MAX));
            shared.save(&token, &SharedSession { owner, expires });
            return token;
        }
        let mut tokens = self.lock();
        let now = Instant::now();
        tokens.retain(|_, s| s.expires > now);
        tokens.insert(
            token.clone(),
            Session {
                owner,
                expires: now + lifetime,
            },
        );
        token
    }

    /// The owner an `Authorization` header names: `Bearer X` or `token X` with a live session
    /// token, or a configured user's own token.
    pub fn authenticate(&self, authorization: Option<&str>) -> Option<Principal> {
        let (scheme, token) = authorization?.trim().split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") && !scheme.eq_ignore_ascii_case("token") {
            return None;
        }
        let token = token.trim();
        if let Some(owner) = self.shared_owner(token) {
            return Some(owner);
        }
        if let Some(session) = self.lock().get(token)
            && session.expires > Instant::now()
        {
            return Some(session.owner.clone());
        }
        // A configured user's own token; with none configured only session tokens are valid.
        if self.principals.is_open() {
            return None;
        }
        self.principals.by_token(token).map(|c| c.principal)
    }

    /// Ends every session, or only one owner's.
    /// The owner of a live shared session (a session id is at most 100 bytes, as the store's keys).
    fn shared_owner(&self, token: &str) -> Option<Principal> {
        let shared = self.shared.as_ref()?;
        if token.is_empty() || token.len() > 100 {
            return None;
        }
        let session = shared.get(token)?;
        if session.expires > chrono::Utc::now().timestamp_millis() {
            Some(session.owner)
        } else {
            shared.remove(token);
            None
        }
    }

    pub fn forget(&self, owner: Option<&Principal>) {
        self.lock()
            .retain(|_, s| owner.is_some_and(|o| s.owner != *o));
        if let Some(shared) = &self.shared {
            for (token, session) in shared.load() {
                if owner.is_none_or(|o| session.owner == *o) {
                    shared.remove(&token);
                }
            }
        }
    }

    /// Ends the session of this header's token; false when there was none.
    pub fn logout(&self, authorization: Option<&str>) -> bool {
        let Some((_, token)) = authorization.and_then(|a| a.trim().split_once(' ')) else {
            return false;
        };
        let token = token.trim();
        if self.shared_owner(token).is_some() {
            if let Some(shared) = &self.shared {
                shared.remove(token);
            }
            return true;
        }
        self.lock().remove(token).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Arc<Principals> {
        Arc::new(Principals::new(vec![crate::query::User {
            name: "alice".into(),
            password: Some("s3cret".into()),
            token: Some("alice-token".into()),
            admin: false,
        }]))
    }

    #[test]
    fn configured_users_must_match() {
        let sessions = Sessions::new(alice());
        assert!(sessions.login("alice", "wrong").is_none());
        assert!(sessions.login("bob", "s3cret").is_none());
        let token = sessions.login("alice", "s3cret").unwrap();
        assert_eq!(token.len(), 40);
        for header in [format!("Bearer {token}"), format!("token {token}")] {
            assert_eq!(
                sessions.authenticate(Some(&header)),
                Some(Principal::user("alice"))
            );
        }
        assert_eq!(sessions.authenticate(Some(&format!("Basic {token}"))), None);
        assert_eq!(
            sessions.authenticate(Some("Bearer alice-token")),
            Some(Principal::user("alice"))
        );
        assert!(sessions.logout(Some(&format!("Bearer {token}"))));
        assert_eq!(
            sessions.authenticate(Some(&format!("Bearer {token}"))),
            None
        );
    }

    #[test]
    fn expired_tokens_are_refused() {
        let sessions = Sessions::new(Arc::default()).with_lifetime(Duration::from_millis(1));
        let token = sessions.login("anyone", "x").unwrap();
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(
            sessions.authenticate(Some(&format!("Bearer {token}"))),
            None
        );
    }
}

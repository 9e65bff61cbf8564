//! HTTP Basic authentication, as Kylin's security filter does it on every request.
//!
//! With no users configured, Kylin's default account `ADMIN` / `KYLIN` (an admin) is the only one;
//! configured users replace it. User names match ignoring case, as Kylin's user manager does.

use hyper::header::AUTHORIZATION;

use super::errors::{KeCode, KylinError, text};
use crate::config::User;
use crate::server::http::Request;

/// Who is asking.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub admin: bool,
}

impl Principal {
    /// Whether this principal may see a job owned by `owner`: its submitter or any admin.
    pub fn may_see(&self, owner: &str) -> bool {
        self.admin || self.name == owner
    }

    /// Kylin's authorities for this user.
    pub fn authorities(&self) -> Vec<&'static str> {
        if self.admin {
            vec!["ROLE_ADMIN", "ALL_USERS"]
        } else {
            vec!["ALL_USERS"]
        }
    }
}

const DEFAULT_USER: &str = "ADMIN";
const DEFAULT_PASSWORD: &str = "KYLIN";

/// Checks the request's Basic credentials against `users` (or the default account).
pub fn authenticate(request: &Request, users: &[User]) -> Result<Principal, KylinError> {
    if !request.headers().contains_key(AUTHORIZATION) {
        return Err(KylinError::unauthorized(
            KeCode::NoCredentials,
            text::NO_CREDENTIALS,
        ));
    }
    let bad = || KylinError::unauthorized(KeCode::BadCredentials, text::BAD_CREDENTIALS);
    let (name, password) = crate::server::http::basic_credentials(request).ok_or_else(bad)?;
    let (name, password) = (name.as_str(), password.as_str());
    if users.is_empty() {
        return if name.eq_ignore_ascii_case(DEFAULT_USER) && password == DEFAULT_PASSWORD {
            Ok(Principal {
                name: DEFAULT_USER.into(),
                admin: true,
            })
        } else {
            Err(bad())
        };
    }
    users
        .iter()
        .find(|u| u.name.eq_ignore_ascii_case(name) && u.password.as_deref() == Some(password))
        .map(|u| Principal {
            name: u.name.clone(),
            admin: u.admin,
        })
        .ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(auth: &str) -> Request {
        hyper::Request::builder()
            .header(AUTHORIZATION, auth)
            .body(bytes::Bytes::new())
            .unwrap()
    }

    #[test]
    fn the_default_account_works_only_without_configured_users() {
        let ok = request("Basic QURNSU46S1lMSU4=");
        let p = authenticate(&ok, &[]).unwrap();
        assert_eq!(p.name, "ADMIN");
        assert!(p.admin);
        let wrong = request("Basic QURNSU46eA=="); // ADMIN:x
        assert_eq!(
            authenticate(&wrong, &[]).unwrap_err().code,
            KeCode::BadCredentials
        );
        let users = [User {
            name: "analyst".into(),
            password: Some("pw".into()),
            token: None,
            admin: false,
        }];
        assert!(authenticate(&ok, &users).is_err());
        let analyst = request("Basic YW5hbHlzdDpwdw=="); // analyst:pw
        assert_eq!(authenticate(&analyst, &users).unwrap().name, "analyst");
        let none = hyper::Request::builder().body(bytes::Bytes::new()).unwrap();
        assert_eq!(
            authenticate(&none, &users).unwrap_err().code,
            KeCode::NoCredentials
        );
    }
}

//! HTTP Basic authentication, as Kylin's security filter does it on every request.
//!
//! With no users configured, Kylin's default account `ADMIN` / `KYLIN` (an admin) is the only one;
//! configured users replace it. User names match ignoring case, as Kylin's user manager does.

use hyper::header::AUTHORIZATION;

use super::errors::{KeCode, KylinError, text};
use crate::query::{Caller, DEFAULT_ADMIN, Principals};
use crate::wire::Request;

/// The default account's password (with no users configured, `ADMIN` / `KYLIN` is the only account).
const DEFAULT_PASSWORD: &str = "KYLIN";

/// Kylin's authorities for this caller.
pub fn authorities(caller: &Caller) -> Vec<&'static str> {
    if caller.admin {
        vec!["ROLE_ADMIN", "ALL_USERS"]
    } else {
        vec!["ALL_USERS"]
    }
}

/// Checks the request's Basic credentials with `principals` (or against the default account).
pub fn authenticate(request: &Request, principals: &Principals) -> Result<Caller, KylinError> {
    if !request.headers().contains_key(AUTHORIZATION) {
        return Err(KylinError::unauthorized(
            KeCode::NoCredentials,
            text::NO_CREDENTIALS,
        ));
    }
    let bad = || KylinError::unauthorized(KeCode::BadCredentials, text::BAD_CREDENTIALS);
    let (name, password) = crate::wire::basic_credentials(request).ok_or_else(bad)?;
    let default_account = name.eq_ignore_ascii_case(DEFAULT_ADMIN) && password == DEFAULT_PASSWORD;
    if principals.is_open() && !default_account {
        return Err(bad());
    }
    principals.by_password(&name, &password).ok_or_else(bad)
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
        let open = Principals::default();
        let p = authenticate(&ok, &open).unwrap();
        assert_eq!(p.principal.name(), "ADMIN");
        assert!(p.admin);
        let wrong = request("Basic QURNSU46eA=="); // ADMIN:x
        assert_eq!(
            authenticate(&wrong, &open).unwrap_err().code,
            KeCode::BadCredentials
        );
        let users = Principals::new(vec![crate::query::User {
            name: "analyst".into(),
            password: Some("pw".into()),
            token: None,
            admin: false,
        }]);
        assert!(authenticate(&ok, &users).is_err());
        let analyst = request("Basic YW5hbHlzdDpwdw=="); // analyst:pw
        assert_eq!(
            authenticate(&analyst, &users).unwrap().principal.name(),
            "analyst"
        );
        let none = hyper::Request::builder().body(bytes::Bytes::new()).unwrap();
        assert_eq!(
            authenticate(&none, &users).unwrap_err().code,
            KeCode::NoCredentials
        );
    }
}

//! Looker's users and roles, enough for `sdk.me()`, `/users` and sudo (`POST /login/{user_id}`).
//!
//! Users are the configured `[[users]]`, numbered from 1 in configuration order; admins hold the
//! `Admin` role (which may sudo), others the `User` role. With no users configured every caller is
//! the one user there is: id 1, named as it logged in.

use serde_json::{Value, json};

use crate::query::{Caller, Principal, Principals};

/// A Looker user as polyquery knows one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LookerUser {
    pub id: u64,
    pub name: String,
    pub admin: bool,
}

/// The roles there are: `(id, name, permissions)`.
const ROLES: [(u64, &str, &[&str]); 2] = [
    (
        2,
        "Admin",
        &[
            "access_data",
            "see_looks",
            "explore",
            "see_sql",
            "see_user_dashboards",
            "sudo",
            "administer",
        ],
    ),
    (
        3,
        "User",
        &["access_data", "see_looks", "explore", "see_sql"],
    ),
];

impl LookerUser {
    fn role_id(&self) -> u64 {
        if self.admin { ROLES[0].0 } else { ROLES[1].0 }
    }

    /// The `User` object, keys as Looker orders them.
    pub fn to_json(&self) -> Value {
        let (first, last) = match self.name.split_once(' ') {
            Some((f, l)) => (f.to_string(), l.to_string()),
            None => (self.name.clone(), String::new()),
        };
        json!({
            "can": {"show": true, "index": true, "show_details": true, "index_details": true, "sudo": !self.admin},
            "avatar_url": null,
            "avatar_url_without_sizing": null,
            // The API credentials this user logs in with: its name is the client id.
            "credentials_api3": [{
                "can": {},
                "id": self.id.to_string(),
                "client_id": self.name,
                "created_at": null,
                "is_disabled": false,
                "type": "api3",
                "url": format!("/api/4.0/users/{}/credentials_api3/{}", self.id, self.id),
            }],
            "credentials_email": null,
            "display_name": self.name,
            "email": null,
            "embed_group_space_id": null,
            "first_name": first,
            "group_ids": [],
            "home_folder_id": "1",
            "id": self.id.to_string(),
            "is_disabled": false,
            "last_name": last,
            "locale": "en",
            "looker_versions": [],
            "models_dir_validated": null,
            "personal_folder_id": null,
            "presumed_looker_employee": false,
            "role_ids": [self.role_id().to_string()],
            "roles_externally_managed": false,
            "sessions": [],
            "ui_state": null,
            "verified_looker_employee": false,
            "allow_direct_roles": true,
            "allow_normal_group_membership": true,
            "allow_roles_from_normal_groups": true,
            "url": format!("/api/4.0/users/{}", self.id),
        })
    }

    /// This user's roles as `Role` objects.
    pub fn roles(&self) -> Vec<Value> {
        role(self.role_id()).into_iter().collect()
    }
}

/// A `Role` by id.
pub fn role(id: u64) -> Option<Value> {
    let (id, name, permissions) = ROLES.into_iter().find(|r| r.0 == id)?;
    Some(json!({
        "can": {"show": true, "index": true, "update": false},
        "id": id.to_string(),
        "name": name,
        "permission_set": {
            "all_access": id == ROLES[0].0,
            "built_in": true,
            "id": id.to_string(),
            "name": name,
            "permissions": permissions,
        },
        "model_set": {"all_access": true, "built_in": true, "id": "1", "models": [], "name": "All"},
        "user_count": null,
        "url": format!("/api/4.0/roles/{id}"),
    }))
}

/// Every role.
pub fn roles() -> Vec<Value> {
    ROLES.iter().filter_map(|r| role(r.0)).collect()
}

/// The users the caller can list: the configured ones, or with none configured the caller alone.
pub fn all(principals: &Principals, caller: &Principal) -> Vec<LookerUser> {
    if principals.is_open() {
        return vec![LookerUser {
            id: 1,
            name: caller.name(),
            admin: principals
                .by_name(&caller.name())
                .is_some_and(|c: Caller| c.admin),
        }];
    }
    principals
        .users()
        .iter()
        .enumerate()
        .map(|(i, u)| LookerUser {
            id: i as u64 + 1,
            name: u.name.clone(),
            admin: u.admin,
        })
        .collect()
}

/// The caller as a Looker user.
pub fn me(principals: &Principals, caller: &Principal) -> Option<LookerUser> {
    all(principals, caller)
        .into_iter()
        .find(|u| Principal::user(&u.name) == *caller)
}

/// A user by id (`"1"`).
pub fn by_id(principals: &Principals, caller: &Principal, id: &str) -> Option<LookerUser> {
    let id: u64 = id.trim().parse().ok()?;
    all(principals, caller).into_iter().find(|u| u.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::User;

    #[test]
    fn configured_users_are_numbered_and_an_open_server_has_one() {
        let user = |name: &str, admin| User {
            name: name.into(),
            password: Some("pw".into()),
            token: None,
            admin,
        };
        let p = Principals::new(vec![user("root", true), user("alice", false)]);
        let alice = Principal::user("alice");
        assert_eq!(me(&p, &alice).map(|u| u.id), Some(2));
        assert_eq!(by_id(&p, &alice, "1").map(|u| u.admin), Some(true));
        assert_eq!(by_id(&p, &alice, "3"), None);
        assert_eq!(me(&p, &alice).unwrap().to_json()["role_ids"], json!(["3"]));

        let open = Principals::default();
        let bob = Principal::user("bob");
        let only = all(&open, &bob);
        assert_eq!(only.len(), 1);
        assert_eq!((only[0].id, only[0].name.as_str()), (1, "bob"));
        assert_eq!(me(&open, &bob).map(|u| u.id), Some(1));
    }
}

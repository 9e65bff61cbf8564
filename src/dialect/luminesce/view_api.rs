//! `ViewManagementApi`: `GET /api/View/list`, `PUT /api/View/update` (upsert: runs the view's
//! `Sys.Admin.SetupView` script as a job), `DELETE /api/View/update?viewName=` and
//! `PUT /api/View/sql` (the SQL that set a view up). Views themselves live in `views.rs`.

use hyper::{Method, StatusCode};
use serde::{Deserialize, Serialize};

use super::params::QueryParams;
use super::views::View;
use super::{Answer, LuminesceError, LuminesceFront, sql_like_matcher};
use crate::engine::{JobState, Limits};
use crate::query::Principal;
use crate::wire::{self as http, Request};

/// The SDK's `ViewItem`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ViewItem {
    name: Option<String>,
    domain: Option<String>,
    file_path: Option<String>,
    file_content: Option<String>,
    last_updated_execution_id: Option<String>,
    last_updated_at: Option<String>,
    last_updated_by: Option<String>,
    created_by_user_id: Option<String>,
    notes: Option<String>,
}

/// The domain polyquery answers for (GUESS: it has one).
const DOMAIN: &str = "polyquery";

impl ViewItem {
    fn of(view: &View) -> Self {
        ViewItem {
            name: Some(view.name.clone()),
            domain: Some(DOMAIN.into()),
            file_path: Some(format!("/views/{}.sql", view.name)),
            file_content: Some(view.setup.clone()),
            last_updated_execution_id: Some(view.execution_id.clone()),
            last_updated_at: Some(view.updated_at.clone()),
            last_updated_by: Some(view.updated_by.clone()),
            created_by_user_id: Some(view.created_by.clone()),
            notes: view.description.clone(),
        }
    }
}

fn no_such_view(detail: impl Into<String>) -> LuminesceError {
    LuminesceError::new(
        StatusCode::NOT_FOUND,
        "ViewNotFound",
        "The view does not exist",
        detail,
    )
}

fn item(request: &Request) -> Result<ViewItem, LuminesceError> {
    serde_json::from_slice(request.body()).map_err(|e| {
        LuminesceError::bad_request(format!("the body must be a ViewItem as JSON: {e}"))
    })
}

impl LuminesceFront {
    /// `/api/View/{part}`
    pub(super) async fn view_api(
        &self,
        caller: &Principal,
        part: &str,
        method: &Method,
        request: &Request,
        q: &QueryParams,
    ) -> Answer {
        let part = part.to_ascii_lowercase();
        match (part.as_str(), method) {
            ("list", &Method::GET) => self.list_views(q),
            ("update", &Method::PUT) => self.upsert_view(caller, request, q).await,
            ("update", &Method::DELETE) => {
                let name = q.nonblank("viewName").ok_or_else(|| {
                    LuminesceError::bad_parameter("viewName", "viewName is required")
                })?;
                if !self.views.remove(&name) {
                    return Err(no_such_view(format!("there is no view '{name}'")));
                }
                Ok(http::json(
                    StatusCode::OK,
                    &format!("View '{name}' deleted"),
                ))
            }
            ("sql", &Method::PUT) => {
                let wanted = item(request)?;
                let view = self
                    .views
                    .all()
                    .into_iter()
                    .find(|v| {
                        wanted
                            .last_updated_execution_id
                            .as_deref()
                            .is_some_and(|id| id.eq_ignore_ascii_case(&v.execution_id))
                            || wanted
                                .name
                                .as_deref()
                                .is_some_and(|n| n.eq_ignore_ascii_case(&v.name))
                    })
                    .ok_or_else(|| {
                        no_such_view("no view was set up by that execution id (or has that name)")
                    })?;
                Ok(http::json(StatusCode::OK, &view.setup))
            }
            ("list" | "update" | "sql", _) => Err(LuminesceError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                "The method is not allowed here",
                format!("{method} is not allowed on /api/View/{part}"),
            )),
            _ => Err(LuminesceError::no_such_path(format!(
                "{method} /api/View/{part} (the View API has list, update and sql)"
            ))),
        }
    }

    /// `GET /api/View/list`: `nameLikeFilter` (SQL LIKE on the name), `regExFilter` (on the SQL).
    fn list_views(&self, q: &QueryParams) -> Answer {
        q.bool("showAll")?;
        let like = q
            .nonblank("nameLikeFilter")
            .map(|p| sql_like_matcher(&p))
            .transpose()
            .map_err(|e| LuminesceError::bad_parameter("nameLikeFilter", e.to_string()))?;
        let regex = q
            .nonblank("regExFilter")
            .map(|p| regex::RegexBuilder::new(&p).size_limit(1 << 20).build())
            .transpose()
            .map_err(|e| LuminesceError::bad_parameter("regExFilter", e.to_string()))?;
        let items: Vec<ViewItem> = self
            .views
            .all()
            .iter()
            .filter(|v| like.as_ref().is_none_or(|m| m.is_match(&v.name)))
            .filter(|v| regex.as_ref().is_none_or(|r| r.is_match(&v.setup)))
            .map(ViewItem::of)
            .collect();
        Ok(http::json(StatusCode::OK, &items))
    }

    /// `PUT /api/View/update`: the item's `fileContent` is a script that sets the view up; it runs
    /// as a job of the caller's, and the view is saved when it succeeds.
    async fn upsert_view(&self, caller: &Principal, request: &Request, q: &QueryParams) -> Answer {
        q.bool("allowWarnings")?;
        let may_update = q.bool("mayUpdateExisting")?.unwrap_or(false);
        let item = item(request)?;
        let sql = item.file_content.as_deref().unwrap_or("").trim();
        if sql.is_empty() {
            return Err(LuminesceError::bad_request(
                "fileContent must hold the Sys.Admin.SetupView script that sets the view up",
            ));
        }
        let mut spec = self
            .script_job(caller, sql, crate::engine::Params::default(), &[])
            .await?;
        let setups = super::models::LuminesceJob::of(&spec).views;
        let [(setup, _)] = setups.as_slice() else {
            return Err(LuminesceError::bad_request(
                "fileContent must set up exactly one view with Sys.Admin.SetupView",
            ));
        };
        if let Some(name) = item.name.as_deref().filter(|n| !n.trim().is_empty())
            && !name.trim().eq_ignore_ascii_case(&setup.name)
        {
            return Err(LuminesceError::bad_request(format!(
                "the item names the view '{name}' but its fileContent sets up '{}'",
                setup.name
            )));
        }
        if !may_update && self.views.get(&setup.name).is_some() {
            return Err(LuminesceError::new(
                StatusCode::CONFLICT,
                "ViewExists",
                "The view already exists",
                format!(
                    "the view '{}' exists: send mayUpdateExisting=True to replace it",
                    setup.name
                ),
            ));
        }
        let limits = Limits {
            timeout: Some(self.max_wait()),
            keep_for: super::KEEP_FOR_NEGATIVE,
            row_limit: None,
        };
        spec.limits = super::limited(&spec, limits);
        let name = setup.name.clone();
        let id = self.engine.submit(spec).await?;
        let record = crate::wire::wait_within(&self.engine, id, &self.limits).await?;
        if record.state != JobState::Succeeded {
            let why = record
                .error
                .map(|e| e.message)
                .unwrap_or_else(|| "it did not finish in time".into());
            return Err(LuminesceError::bad_request(format!(
                "the view '{name}' was not saved: {why}"
            )));
        }
        self.views.settle(&record);
        Ok(http::json(
            StatusCode::OK,
            &format!("View '{name}' saved by execution {}", record.id.to_uuid()),
        ))
    }
}

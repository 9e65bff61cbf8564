//! `/admin/requests/running`: the caller's running requests, listed and cancelled.

use super::*;

impl AsterixFront {
    pub(super) fn running(&self, owner: &Principal) -> Response {
        let now = Utc::now();
        let list: Vec<Value> = self
            .engine
            .list(Some(owner))
            .into_iter()
            .filter(|r| !r.state.is_terminal())
            .map(|r| {
                let meta = AsterixJob::of(&r);
                let elapsed = (now - r.created).num_microseconds().unwrap_or(0) as f64 / 1e6;
                json!({
                    "uuid": r.id.to_uuid(),
                    "requestTime": iso(r.created),
                    "elapsedTime": elapsed,
                    "node": "polyquery",
                    "state": if r.state == JobState::Running { "running" } else { "received" },
                    "userAgent": meta.user_agent,
                    "remoteAddr": meta.remote_addr,
                    "cancellable": true,
                    "jobId": format!("JID:{}", r.id.seq),
                    "jobCreateTime": r.created.timestamp_millis(),
                    "jobStartTime": r.started.map(|t| t.timestamp_millis()),
                    "jobQueueTime": r.created.timestamp_millis(),
                    "jobStatus": if r.state == JobState::Running { "RUNNING" } else { "PENDING" },
                    "jobRequiredCPUs": 1,
                    "jobRequiredMemory": 0,
                    "statement": r.spec.sql,
                    "clientContextID": meta.client_context_id,
                })
            })
            .collect();
        let body = serde_json::to_string(&list).unwrap_or_else(|_| "[]".into());
        http::with_body(StatusCode::OK, "application/json; charset=UTF-8", body)
    }

    /// `DELETE /admin/requests/running`: `request_id` (wins) or `client_context_id`, from the URL or
    /// a form body. 400 with neither, 404 when no such request is running, 200 when cancelled.
    pub(super) fn cancel(&self, request: &Request, owner: &Principal) -> Response {
        let mut pairs = http::query_pairs(request);
        if let Ok(body) = http::form_pairs(request.body()) {
            pairs.extend(body);
        }
        let find = |name: &str| {
            pairs
                .iter()
                .find(|(k, v)| k == name && !v.is_empty())
                .map(|(_, v)| v.clone())
        };
        // Any running job of the caller's, whichever wire started it.
        let running = |r: &JobRecord| !r.state.is_terminal();
        let target = if let Some(request_id) = find("request_id") {
            JobRef::parse(&request_id)
                .and_then(|r| self.engine.resolve(r))
                .and_then(|id| self.engine.get_for(id, owner).ok())
                .filter(running)
        } else if let Some(context) = find("client_context_id") {
            self.engine
                .list(Some(owner))
                .into_iter()
                .filter(running)
                .find(|r| AsterixJob::of(r).client_context_id.as_ref() == Some(&context))
        } else {
            return http::no_body(StatusCode::BAD_REQUEST);
        };
        match target.map(|r| self.engine.cancel(r.id)) {
            Some(Ok(_)) => http::no_body(StatusCode::OK),
            Some(Err(_)) => http::no_body(StatusCode::INTERNAL_SERVER_ERROR),
            None => http::no_body(StatusCode::NOT_FOUND),
        }
    }
}

//! The status and result handles: their URLs, `GET /query/service/status/<handle>`,
//! `GET` and `DELETE /query/service/result/<handle>`.

use super::*;

impl AsterixFront {
    /// The job a handle path (`/7-0`, `/<uuid>/7-0`, `/<uuid>/7-0/0`) names: 400 when malformed,
    /// 404 when unknown, expired or someone else's. A job started through another wire is also
    /// found by its UUID alone (`/<uuid>`), the identity every wire shows.
    pub(super) fn job_for_handle(
        &self,
        suffix: &str,
        owner: &Principal,
    ) -> Result<JobRecord, StatusCode> {
        let text = suffix.strip_prefix('/').unwrap_or(suffix);
        let segments: Vec<&str> = text.split('/').collect();
        let (request_id, id_segment) = match segments.as_slice() {
            [one] => (None, *one),
            [req, two] | [req, two, _] => (Some(*req), *two),
            _ => return Err(StatusCode::BAD_REQUEST),
        };
        if request_id.is_none()
            && let Some(JobRef::Uuid(uuid)) = JobRef::parse(id_segment)
        {
            return self
                .engine
                .resolve(JobRef::Uuid(uuid))
                .and_then(|id| self.engine.get_for(id, owner).ok())
                .ok_or(StatusCode::NOT_FOUND);
        }
        let well_formed = id_segment.find('-').is_some_and(|dash| {
            dash >= 1
                && id_segment[..dash].parse::<i64>().is_ok()
                && id_segment[dash + 1..].parse::<i64>().is_ok()
        });
        if !well_formed {
            return Err(StatusCode::BAD_REQUEST);
        }
        JobRef::parse(id_segment)
            .and_then(|r| self.engine.resolve(r))
            .and_then(|id| self.engine.get_for(id, owner).ok())
            .filter(|r| request_id.is_none_or(|q| q == r.id.to_uuid()))
            .ok_or(StatusCode::NOT_FOUND)
    }

    /// The new API's status body: metrics and `createdAt` always, and for a finished result its
    /// handle, count and partitions.
    pub(super) fn new_api_status(&self, record: &JobRecord, status: ResultStatus) -> Response {
        let rules = self.rules();
        let now = Utc::now();
        let measures = Measures {
            elapsed: between(Some(record.created), record.finished.or(Some(now))),
            execution: between(record.started, record.finished.or(Some(now))),
            compile: compile_time(record),
            queue_wait: between(Some(record.created), record.started.or(Some(now))),
            ..Measures::default()
        };
        let mut envelope = Envelope::default();
        envelope.string("status", status.as_str());
        match record.state {
            JobState::Succeeded => {
                let result = relative_handle("result", record.id);
                let count = record.row_count.unwrap_or(record.rows);
                envelope.string("handle", &result);
                envelope.field("resultCount", &json!(count));
                envelope.field(
                    "partitions",
                    &json!([{"handle": format!("{result}/0"), "resultCount": count}]),
                );
                let ordered = AsterixJob::of(record).ordered;
                envelope.field("resultSetOrdered", &json!(ordered));
                rules.metrics(&mut envelope, &measures, MetricSet::StatusDone);
            }
            JobState::Queued | JobState::Running => {
                rules.metrics(&mut envelope, &measures, MetricSet::StatusRunning);
            }
            JobState::Failed | JobState::Cancelled | JobState::TimedOut => {
                envelope.errors(&AsxError::from_engine(
                    &record.end_error(),
                    &record.id.to_uuid(),
                ));
            }
        }
        envelope.string("createdAt", &iso(record.created));
        self.respond(StatusCode::OK, envelope.finish())
    }

    /// `DELETE /query/service/result/<handle>` (master): 202 discarded, 404 unknown, 400 when a
    /// partition is named or the handle is malformed.
    pub(super) fn discard(&self, suffix: &str, owner: &Principal) -> Response {
        if suffix.trim_start_matches('/').split('/').count() > 2 {
            return http::no_body(StatusCode::BAD_REQUEST);
        }
        match self.job_for_handle(suffix, owner) {
            Ok(record) => {
                self.engine.remove(record.id).ok();
                http::no_body(StatusCode::ACCEPTED)
            }
            Err(code) => http::no_body(code),
        }
    }

    pub(super) fn status(&self, request: &Request, suffix: &str, owner: &Principal) -> Response {
        let record = match self.job_for_handle(suffix, owner) {
            // A status poll: counted against a fault's not-ready polls.
            Ok(r) => self.engine.poll(r.id).unwrap_or(r),
            Err(code) => return http::no_body(code),
        };
        let mut envelope = Envelope::default();
        let status = match (record.state, self.profile) {
            (JobState::Queued, Profile::Master) => ResultStatus::Queued,
            (JobState::Queued | JobState::Running, _) => ResultStatus::Running,
            (JobState::Succeeded, _) => ResultStatus::Success,
            (JobState::Failed | JobState::Cancelled, _) => ResultStatus::Failed,
            (JobState::TimedOut, Profile::V099) => ResultStatus::Fatal,
            (JobState::TimedOut, _) => ResultStatus::Timeout,
        };
        envelope.string("status", status.as_str());
        if AsterixJob::of(&record).new_api {
            return self.new_api_status(&record, status);
        }
        match record.state {
            JobState::Succeeded => {
                envelope.string("handle", &handle(request, "result", &record));
            }
            JobState::Failed | JobState::Cancelled | JobState::TimedOut => {
                envelope.errors(&AsxError::from_engine(
                    &record.end_error(),
                    &record.id.to_uuid(),
                ));
            }
            JobState::Queued | JobState::Running => {}
        }
        self.respond(StatusCode::OK, envelope.finish())
    }

    pub(super) fn result(&self, suffix: &str, owner: &Principal) -> Response {
        let started = Instant::now();
        let record = match self.job_for_handle(suffix, owner) {
            Ok(r) => r,
            Err(code) => return http::no_body(code),
        };
        if record.state != JobState::Succeeded {
            return http::no_body(StatusCode::NOT_FOUND);
        }
        let Ok(reader) = self.engine.read(record.id) else {
            return http::no_body(StatusCode::NOT_FOUND);
        };
        // `max-result-reads` limits the jobs AsterixDB started; another wire's job keeps its own lifetime.
        let own = record.spec.meta::<AsterixJob>();
        let allowed: Option<i64> = own.as_ref().map(|m| m.max_result_reads);
        let meta = own.unwrap_or_default();
        let exhausted =
            allowed.is_some_and(|allowed| self.reads.count(&self.engine, record.id, allowed));
        if exhausted {
            // The last permitted read: the result is gone once it is sent.
            self.engine.remove(record.id).ok();
        }
        let format = OutputFormat::from_tag(&meta.format);
        let shape = RowShape::from_tag(&meta.shape);
        let pretty = meta.pretty;
        let timings = meta.profile_timings;
        let mut printer = RecordPrinter {
            shape,
            format,
            style: style(pretty),
            quoted: false,
        };
        let (layout, head, content_type, tail): (Layout, String, String, results::Tail) =
            match (format, self.profile) {
                (OutputFormat::Adm, _) => (
                    Layout::LINES,
                    String::new(),
                    "application/x-adm; charset=UTF-8".into(),
                    Box::new(|_| String::new()),
                ),
                (OutputFormat::Csv { header }, _) => (
                    Layout::LINES,
                    String::new(),
                    format!(
                        "text/csv; header={}; charset=UTF-8",
                        if header { "present" } else { "absent" }
                    ),
                    Box::new(|_| String::new()),
                ),
                (_, Profile::Docs) => {
                    printer.style = RecordStyle::Spaced;
                    (
                        Layout::BARE_ARRAY,
                        String::new(),
                        "application/json".into(),
                        Box::new(|_| String::new()),
                    )
                }
                (_, profile) => {
                    let measures = self.record_measures(&record, started);
                    let job = record.clone();
                    let created = meta.new_api.then(|| iso(record.created));
                    (
                        Layout::ENVELOPE,
                        "{\n".into(),
                        self.content_type().into(),
                        Box::new(move |counts| {
                            let mut m = measures;
                            m.counts = counts;
                            m.elapsed = started.elapsed();
                            result_tail(profile, &m, timings.then_some(&job), created)
                        }),
                    )
                }
            };
        let body = results::stream(reader, printer, layout, head, tail);
        let mut response = hyper::Response::new(body);
        if let Ok(v) = HeaderValue::from_str(&content_type) {
            response
                .headers_mut()
                .insert(hyper::header::CONTENT_TYPE, v);
        }
        response
    }
}

/// A job's handle: old API, an absolute URL from the request's Host header ending in `<n>-0`;
/// new API, the relative `/query/service/<kind>/<request id>/<n>-0`.
pub(super) fn handle(request: &Request, kind: &str, record: &JobRecord) -> String {
    handle_url(request, kind, record.id, AsterixJob::of(record).new_api)
}

pub(super) fn handle_url(request: &Request, kind: &str, id: JobId, new_api: bool) -> String {
    if new_api {
        return relative_handle(kind, id);
    }
    let host = request
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| request.uri().authority().map(|a| a.to_string()))
        .unwrap_or_else(|| "localhost".into());
    format!("http://{host}{SERVICE}/{kind}/{}", id.to_handle())
}

pub(super) fn relative_handle(kind: &str, id: JobId) -> String {
    format!("{SERVICE}/{kind}/{}/{}", id.to_uuid(), id.to_handle())
}

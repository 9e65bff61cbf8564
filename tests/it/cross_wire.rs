//! One job, four wires: a job started through any dialect is read (status and result) and cancelled
//! through every dialect by the same principal, rendered in that wire's own terms; another principal
//! sees none of it. The 16 cells run with users configured and with none.

use std::time::Duration;

use polyquery::config::{Config, User};
use polyquery::engine::{JobRef, JobState};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use crate::support::TestServer;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wire {
    Luminesce,
    Kylin,
    Looker,
    AsterixDb,
}

pub(crate) const WIRES: [Wire; 4] = [Wire::Luminesce, Wire::Kylin, Wire::Looker, Wire::AsterixDb];

/// Every fast job answers one row holding this number.
pub(crate) const ANSWER: &str = "1000";

const KYLIN_V2: &str = "application/vnd.apache.kylin-v2+json";

/// The credentials one principal presents: a Bearer token (Luminesce), a name and password (Kylin,
/// AsterixDB, the Looker login).
#[derive(Clone)]
pub(crate) struct Credentials {
    token: &'static str,
    name: &'static str,
    password: &'static str,
}

pub(crate) const ALICE: Credentials = Credentials {
    token: "alice-token",
    name: "alice",
    password: "pw",
};
pub(crate) const BOB: Credentials = Credentials {
    token: "bob-token",
    name: "bob",
    password: "pw2",
};
/// With no users configured: the default account every wire accepts (Kylin's `ADMIN` / `KYLIN`).
pub(crate) const ADMIN: Credentials = Credentials {
    token: "ADMIN",
    name: "ADMIN",
    password: "KYLIN",
};

pub(crate) fn users_config() -> Config {
    let user = |c: &Credentials| User {
        name: c.name.into(),
        password: Some(c.password.into()),
        token: Some(c.token.into()),
        admin: false,
    };
    Config {
        users: vec![user(&ALICE), user(&BOB)],
        ..looker_models(Config::default())
    }
}

/// The Looker test models (an explore slow enough to be cancelled while it runs).
fn looker_models(mut config: Config) -> Config {
    config.looker.model_dir =
        Some(std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/looker/models"));
    config
}

/// What a status read through one wire says, in the engine's words.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Seen {
    Going,
    Succeeded,
    Ended,
    Invisible,
}

/// One principal talking on all four wires to one server, or to the instances of a cluster in
/// turn (every request to another instance than the one before).
pub(crate) struct Caller {
    bases: Vec<String>,
    turn: std::sync::atomic::AtomicUsize,
    http: Client,
    who: Credentials,
    looker_token: String,
}

impl Caller {
    pub(crate) async fn new(server: &TestServer, who: Credentials) -> Caller {
        Caller::over(vec![server.url("")], who).await
    }

    /// A caller whose requests go to each of `bases` (`http://host:port`) in turn.
    pub(crate) async fn over(bases: Vec<String>, who: Credentials) -> Caller {
        let mut caller = Caller {
            bases,
            turn: Default::default(),
            http: Client::new(),
            who,
            looker_token: String::new(),
        };
        let login: Value = json_of(
            caller
                .http
                .post(caller.url("/api/4.0/login"))
                .header("content-type", FORM)
                .body(form(&[
                    ("client_id", caller.who.name),
                    ("client_secret", caller.who.password),
                ])),
        )
        .await;
        caller.looker_token = login["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("Looker login failed: {login}"))
            .to_string();
        caller
    }

    /// `path` on the next instance in turn.
    fn url(&self, path: &str) -> String {
        let turn = self.turn.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("{}{path}", self.bases[turn % self.bases.len()])
    }

    pub(crate) fn get(&self, wire: Wire, path: &str) -> reqwest::RequestBuilder {
        self.authorized(wire, self.http.get(self.url(path)))
    }

    fn delete(&self, wire: Wire, path: &str) -> reqwest::RequestBuilder {
        self.authorized(wire, self.http.delete(self.url(path)))
    }

    fn post(&self, wire: Wire, path: &str) -> reqwest::RequestBuilder {
        self.authorized(wire, self.http.post(self.url(path)))
    }

    fn authorized(&self, wire: Wire, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match wire {
            Wire::Luminesce => request.bearer_auth(self.who.token),
            Wire::Looker => request.bearer_auth(&self.looker_token),
            Wire::Kylin => request
                .basic_auth(self.who.name, Some(self.who.password))
                .header("accept", KYLIN_V2)
                .header("content-type", KYLIN_V2),
            Wire::AsterixDb => request.basic_auth(self.who.name, Some(self.who.password)),
        }
    }

    /// Starts a job through `wire`; answers its UUID. A slow job sleeps long enough to be cancelled.
    pub(crate) async fn start(&self, wire: Wire, slow: bool) -> String {
        let sql = if slow {
            "select pq_sleep(30000) as n"
        } else {
            "select 1000 as n"
        };
        let id = match wire {
            Wire::Luminesce => Some(self.start_luminesce(sql).await),
            Wire::Kylin => {
                let answer: Value = json_of(
                    self.post(wire, "/kylin/api/async_query")
                        .json(&json!({"sql": sql, "project": "DEFAULT"})),
                )
                .await;
                answer["data"]["queryID"].as_str().map(str::to_string)
            }
            Wire::AsterixDb => {
                let answer: Value = self
                    .post(wire, "/query/service")
                    .header("content-type", FORM)
                    .body(form(&[
                        ("statement", &format!("{sql};")),
                        ("mode", "async"),
                    ]))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                answer["requestID"].as_str().map(str::to_string)
            }
            Wire::Looker => {
                let query = if slow {
                    json!({"model": "pqtest", "view": "slow", "fields": ["sleepy.nap"]})
                } else {
                    json!({"model": "polyquery", "view": "Testing1K", "fields": ["Testing1K.count"]})
                };
                let query: Value = json_of(self.post(wire, "/api/4.0/queries").json(&query)).await;
                let task: Value = json_of(
                    self.post(wire, "/api/4.0/query_tasks")
                        .json(&json!({"query_id": query["id"], "result_format": "json"})),
                )
                .await;
                task["id"]
                    .as_str()
                    .and_then(|hex| uuid::Uuid::try_parse(hex).ok())
                    .map(|u| u.hyphenated().to_string())
            }
        };
        id.unwrap_or_else(|| panic!("{wire:?} did not start a job"))
    }

    /// Starts `sql` through Luminesce; answers the execution id.
    pub(crate) async fn start_luminesce(&self, sql: &str) -> String {
        let answer: Value = json_of(
            self.http
                .put(self.url("/honeycomb/api/SqlBackground"))
                .bearer_auth(self.who.token)
                .body(sql.to_string()),
        )
        .await;
        answer["executionId"]
            .as_str()
            .unwrap_or_else(|| panic!("Luminesce did not start {sql}: {answer}"))
            .to_string()
    }

    /// The job's state as `wire` reports it.
    pub(crate) async fn status(&self, wire: Wire, uuid: &str) -> Seen {
        let (status, body) = read_json(self.get(wire, &status_path(wire, uuid))).await;
        match wire {
            Wire::Luminesce => match (status, body["status"].as_str()) {
                (StatusCode::NOT_FOUND, _) => Seen::Invisible,
                (_, Some("WaitingForActivation")) => Seen::Going,
                (_, Some("RanToCompletion")) => Seen::Succeeded,
                (_, Some("Faulted" | "Canceled")) => Seen::Ended,
                other => panic!("Luminesce status {other:?}: {body}"),
            },
            // Kylin answers HTTP 200 with code "401" for a job the caller may not see.
            Wire::Kylin => match (body["code"].as_str(), body["data"]["status"].as_str()) {
                (Some("401"), _) | (Some("999"), _) => Seen::Invisible,
                (_, Some("RUNNING")) => Seen::Going,
                (_, Some("SUCCESSFUL")) => Seen::Succeeded,
                (_, Some("FAILED")) => Seen::Ended,
                (_, Some("MISSING")) => Seen::Invisible,
                other => panic!("Kylin status {other:?}: {body}"),
            },
            Wire::Looker => match (status, body["status"].as_str()) {
                (StatusCode::NOT_FOUND, _) => Seen::Invisible,
                (_, Some("added" | "running")) => Seen::Going,
                (_, Some("complete")) => Seen::Succeeded,
                (_, Some("error" | "killed")) => Seen::Ended,
                other => panic!("Looker status {other:?}: {body}"),
            },
            Wire::AsterixDb => match (status, body["status"].as_str()) {
                (StatusCode::NOT_FOUND, _) => Seen::Invisible,
                (_, Some("queued" | "running")) => Seen::Going,
                (_, Some("success")) => Seen::Succeeded,
                (_, Some("failed" | "fatal" | "timeout")) => Seen::Ended,
                other => panic!("AsterixDB status {other:?}: {body}"),
            },
        }
    }

    /// Polls until the job is no longer going (bounded: a job that never ends fails the test).
    pub(crate) async fn settled(&self, wire: Wire, uuid: &str) -> Seen {
        for _ in 0..500 {
            match self.status(wire, uuid).await {
                Seen::Going => tokio::time::sleep(Duration::from_millis(20)).await,
                seen => return seen,
            }
        }
        panic!("{wire:?} never saw job {uuid} end");
    }

    /// The finished result read through `wire`, in its own format.
    pub(crate) async fn result(&self, wire: Wire, uuid: &str) -> (StatusCode, String) {
        let request = self.get(wire, &result_path(wire, uuid));
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.text().await.unwrap())
    }

    /// Cancels the job through `wire`; answers whether the wire said it did.
    pub(crate) async fn cancel(&self, wire: Wire, uuid: &str) -> bool {
        let hex = uuid.replace('-', "");
        let path = match wire {
            Wire::Luminesce => format!("/honeycomb/api/SqlBackground/{uuid}"),
            Wire::Kylin => format!("/kylin/api/async_query/stop/{uuid}"),
            Wire::Looker => format!("/api/4.0/running_queries/{hex}"),
            Wire::AsterixDb => format!("/admin/requests/running?request_id={uuid}"),
        };
        let response = self.delete(wire, &path).send().await.unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        match wire {
            Wire::Kylin => status.is_success() && body["code"] == "000",
            _ => status.is_success(),
        }
    }
}

/// Where `wire` answers a job's status.
pub(crate) fn status_path(wire: Wire, uuid: &str) -> String {
    let hex = uuid.replace('-', "");
    match wire {
        Wire::Luminesce => format!("/honeycomb/api/SqlBackground/{uuid}"),
        Wire::Kylin => format!("/kylin/api/async_query/{uuid}/status"),
        Wire::Looker => format!("/api/4.0/query_tasks/{hex}"),
        Wire::AsterixDb => format!("/query/service/status/{uuid}"),
    }
}

/// Where `wire` answers a finished job's result.
pub(crate) fn result_path(wire: Wire, uuid: &str) -> String {
    let hex = uuid.replace('-', "");
    match wire {
        Wire::Luminesce => format!("/honeycomb/api/SqlBackground/{uuid}/csv"),
        Wire::Kylin => format!("/kylin/api/async_query/{uuid}/result_download"),
        Wire::Looker => format!("/api/4.0/query_tasks/{hex}/results"),
        Wire::AsterixDb => format!("/query/service/result/{uuid}"),
    }
}

const FORM: &str = "application/x-www-form-urlencoded";

fn form(pairs: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(pairs).unwrap()
}

/// The JSON answer of a request (whatever its status).
pub(crate) async fn json_of(request: reqwest::RequestBuilder) -> Value {
    request.send().await.unwrap().json().await.unwrap()
}

async fn read_json(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Every cell of the matrix: status, result and cancel of a job started on `from`, through `via`.
async fn matrix(server: &TestServer, owner: Credentials, stranger: Option<Credentials>) {
    let owner = Caller::new(server, owner).await;
    let stranger = match stranger {
        Some(s) => Some(Caller::new(server, s).await),
        None => None,
    };
    for from in WIRES {
        for via in WIRES {
            let cell = format!("started on {from:?}, read through {via:?}");
            let job = owner.start(from, false).await;
            assert_eq!(owner.settled(via, &job).await, Seen::Succeeded, "{cell}");
            if let Some(stranger) = &stranger {
                assert_eq!(
                    stranger.status(via, &job).await,
                    Seen::Invisible,
                    "{cell}: a stranger"
                );
            }
            let (status, body) = owner.result(via, &job).await;
            assert_eq!(status, StatusCode::OK, "{cell}: {body}");
            assert!(body.contains(ANSWER), "{cell}: {body}");

            let slow = owner.start(from, true).await;
            if let Some(stranger) = &stranger {
                assert!(
                    !stranger.cancel(via, &slow).await,
                    "{cell}: a stranger cancelled"
                );
            }
            // Cancel only once the job runs, so every wire sees a running job to stop.
            let id = server
                .engine
                .resolve(JobRef::parse(&slow).unwrap())
                .unwrap();
            crate::support::wait_for_state(&server.engine, id, JobState::Running).await;
            assert!(owner.cancel(via, &slow).await, "{cell}: cancel");
            assert_eq!(
                server.engine.get(id).unwrap().state,
                JobState::Cancelled,
                "{cell}"
            );
            assert_eq!(owner.status(via, &slow).await, Seen::Ended, "{cell}");
        }
    }
}

#[tokio::test]
async fn every_wire_reads_and_cancels_every_wires_jobs_with_users_configured() {
    let server = TestServer::start(users_config()).await;
    matrix(&server, ALICE, Some(BOB)).await;
}

#[tokio::test]
async fn every_wire_reads_and_cancels_every_wires_jobs_with_no_users() {
    let server = TestServer::start(looker_models(Config::default())).await;
    matrix(&server, ADMIN, None).await;
}

/// Kylin admins see every job, as Kylin promises: an anonymous AsterixDB job included.
#[tokio::test]
async fn the_kylin_admin_sees_an_anonymous_asterixdb_job() {
    let server = TestServer::start(Config::default()).await;
    let http = Client::new();
    let answer: Value = http
        .post(server.url("/query/service"))
        .header("content-type", FORM)
        .body(form(&[
            ("statement", "select 1000 as n;"),
            ("mode", "async"),
        ]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let uuid = answer["requestID"].as_str().unwrap();
    let admin = Caller::new(&server, ADMIN).await;
    assert_eq!(admin.settled(Wire::Kylin, uuid).await, Seen::Succeeded);
    let (status, body) = admin.result(Wire::Kylin, uuid).await;
    assert_eq!((status, body.trim()), (StatusCode::OK, ANSWER));
    // The anonymous principal is no credential string: a Bearer token naming it reads nothing.
    let forger = http
        .get(server.url(&format!("/honeycomb/api/SqlBackground/{uuid}")))
        .bearer_auth("anonymous@127.0.0.1")
        .send()
        .await
        .unwrap();
    assert_eq!(forger.status(), StatusCode::NOT_FOUND);
}

/// A synchronous request whose client hangs up leaves no work behind: its job is cancelled.
#[tokio::test]
async fn a_synchronous_request_whose_client_hangs_up_cancels_its_job() {
    let server = TestServer::start(looker_models(Config::default())).await;
    let looker = Caller::new(&server, ADMIN).await;
    let impatient = Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let requests: Vec<(&str, reqwest::RequestBuilder)> = vec![
        (
            "AsterixDB immediate",
            impatient
                .post(server.url("/query/service"))
                .header("content-type", FORM)
                .body(form(&[("statement", r#"select value sleep("x", 30000);"#)])),
        ),
        (
            "Kylin sync query",
            impatient
                .post(server.url("/kylin/api/query"))
                .basic_auth(ADMIN.name, Some(ADMIN.password))
                .json(&json!({"sql": "select pq_sleep(30000) as s", "project": "DEFAULT"})),
        ),
        (
            "Looker inline run",
            impatient
                .post(server.url("/api/4.0/queries/run/json"))
                .bearer_auth(&looker.looker_token)
                .json(&json!({"model": "pqtest", "view": "slow", "fields": ["sleepy.nap"]})),
        ),
    ];
    for (wire, request) in requests {
        let before: Vec<_> = server.engine.list(None).into_iter().map(|r| r.id).collect();
        assert!(
            request.send().await.is_err(),
            "{wire}: the client should give up first"
        );
        let job = server
            .engine
            .list(None)
            .into_iter()
            .find(|r| !before.contains(&r.id))
            .unwrap_or_else(|| panic!("{wire}: no job was started"));
        let mut state = job.state;
        for _ in 0..250 {
            state = server
                .engine
                .get(job.id)
                .map(|r| r.state)
                .unwrap_or(JobState::Cancelled);
            if state.is_terminal() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            state,
            JobState::Cancelled,
            "{wire}: the job outlived its request"
        );
    }
}

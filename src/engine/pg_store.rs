//! The job store on PostgreSQL (`store.url = "postgres://…"`): job records, the sequence's
//! high-water mark and the fronts' side records as rows, so that they live outside the process.
//!
//! The `JobStore` trait is synchronous (its writes come from the engine's writer thread), so one
//! thread of this store's own owns the connection and its small runtime; callers hand it work and
//! wait for the answer. The schema is versioned and brought up to date at connect, under an
//! advisory lock so that instances starting together do not race. Every instance of a cluster
//! connects to the same database: the rows are the truth, and a trigger announces each job's
//! changes to all of them (`LISTEN pq_events`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use tokio::sync::broadcast;
use tokio_postgres::types::ToSql;
use tokio_postgres::{AsyncMessage, Client, NoTls};

use super::id::{JobId, JobRef};
use super::job::JobRecord;
use super::state::JobState;
use super::store::{JobStore, StoreEvent, side_table_name};
use crate::query::{EngineError, Principal};

/// The schema, one step per version; a database at version `n` gets the steps after `n`.
const MIGRATIONS: &[&str] = &[
    // 1: jobs, the sequence's high-water mark, side records.
    "CREATE TABLE pq_jobs (
         id text PRIMARY KEY,
         seq bigint NOT NULL,
         record text NOT NULL
     );
     CREATE TABLE pq_sequence (high_water bigint NOT NULL);
     INSERT INTO pq_sequence VALUES (0);
     CREATE TABLE pq_side (
         tbl text NOT NULL,
         key text NOT NULL,
         value text NOT NULL,
         PRIMARY KEY (tbl, key)
     );",
    // 2: several instances. Columns the compare-and-set and the lookups need, the sequence as a
    // PostgreSQL sequence, the instances' heartbeats, and a trigger announcing job changes.
    "ALTER TABLE pq_jobs
         ADD COLUMN state text NOT NULL DEFAULT 'failed',
         ADD COLUMN attempt integer NOT NULL DEFAULT 0,
         ADD COLUMN instance text,
         ADD COLUMN owner jsonb,
         ADD COLUMN expires_at bigint;
     UPDATE pq_jobs SET state = (record::jsonb)->>'state', owner = (record::jsonb)->'spec'->'owner';
     CREATE INDEX pq_jobs_seq ON pq_jobs (seq);
     CREATE INDEX pq_jobs_owner ON pq_jobs (owner);
     CREATE INDEX pq_jobs_live ON pq_jobs (state) WHERE state IN ('queued', 'running');
     CREATE INDEX pq_jobs_expiry ON pq_jobs (expires_at);
     CREATE SEQUENCE pq_job_seq;
     SELECT setval('pq_job_seq', GREATEST((SELECT high_water FROM pq_sequence),
                                          (SELECT coalesce(max(seq), 0) FROM pq_jobs)) + 1, false);
     CREATE TABLE pq_instances (id text PRIMARY KEY, seen timestamptz NOT NULL);
     CREATE FUNCTION pq_job_event() RETURNS trigger LANGUAGE plpgsql AS $$
     BEGIN
         IF TG_OP = 'DELETE' THEN
             PERFORM pg_notify('pq_events', OLD.id || ' removed');
             RETURN OLD;
         END IF;
         IF TG_OP = 'INSERT' OR NEW.state IS DISTINCT FROM OLD.state THEN
             PERFORM pg_notify('pq_events', NEW.id || ' ' || NEW.state);
         END IF;
         RETURN NEW;
     END $$;
     CREATE TRIGGER pq_job_event AFTER INSERT OR UPDATE OR DELETE ON pq_jobs
         FOR EACH ROW EXECUTE FUNCTION pq_job_event();",
];

/// A job record's write: a compare-and-set, refused when the stored job ended otherwise or a
/// later attempt owns it. (`polyquery bench` runs it through `pgbench` too.)
pub const SAVE_JOB: &str =
    "INSERT INTO pq_jobs (id, seq, record, state, attempt, instance, owner, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7::text::jsonb, $8)
     ON CONFLICT (id) DO UPDATE SET record = EXCLUDED.record,
         state = EXCLUDED.state, attempt = EXCLUDED.attempt,
         instance = EXCLUDED.instance, expires_at = EXCLUDED.expires_at
     WHERE pq_jobs.attempt <= EXCLUDED.attempt
       AND (pq_jobs.state IN ('queued', 'running') OR pq_jobs.state = EXCLUDED.state)";

/// Any key: the advisory lock that serialises schema migrations.
const MIGRATION_LOCK: i64 = 0x7071_7565_7279; // "pquery"
/// The channel the store's trigger announces job changes on.
const EVENTS: &str = "pq_events";

/// Work for the store's thread: given the connection, or why there is none. It answers false
/// when the connection was lost under it (it is then run again on a new one).
type Work = Box<dyn for<'c> FnMut(Result<&'c Client, EngineError>) -> BoxFuture<'c, bool> + Send>;

/// A job store on one PostgreSQL database, shared by every instance connected to it.
pub struct PgJobStore {
    /// `None` once closed.
    work: std::sync::Mutex<Option<tokio::sync::mpsc::UnboundedSender<Work>>>,
    events: broadcast::Sender<StoreEvent>,
    /// Whether the store's thread holds an open connection now.
    connected: Arc<AtomicBool>,
}

fn store_error(e: impl std::fmt::Display) -> EngineError {
    EngineError::internal(format!("the job store (PostgreSQL) failed: {e}"))
}

impl PgJobStore {
    /// Connects to `url` (a libpq-style URL or key=value string), brings the schema up to date and
    /// listens for what other instances do to jobs.
    pub fn connect(url: &str) -> Result<PgJobStore, EngineError> {
        let (work_tx, mut work_rx) = tokio::sync::mpsc::unbounded_channel::<Work>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), EngineError>>();
        let (events, _) = broadcast::channel(1024);
        let announce = events.clone();
        let connected = Arc::new(AtomicBool::new(false));
        let up = connected.clone();
        let url = url.to_string();
        std::thread::Builder::new()
            .name("pq-pg-store".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(store_error(e)));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let mut client = match open(&url, &announce).await {
                        Ok(client) => {
                            let _ = ready_tx.send(Ok(()));
                            Some(client)
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    while let Some(mut work) = work_rx.recv().await {
                        // A lost connection (PostgreSQL restarted) is opened again; the work
                        // waits for it a while, so that nothing is lost to a short outage.
                        let deadline = tokio::time::Instant::now() + RECONNECT_FOR;
                        loop {
                            up.store(
                                client.as_ref().is_some_and(|c| !c.is_closed()),
                                Ordering::Relaxed,
                            );
                            if client.as_ref().is_none_or(Client::is_closed) {
                                client = match open(&url, &announce).await {
                                    Ok(client) => {
                                        tracing::info!("the job store's connection is back");
                                        Some(client)
                                    }
                                    Err(e) => {
                                        tracing::warn!(error = %e, "the job store is unreachable");
                                        None
                                    }
                                };
                            }
                            match &client {
                                Some(open) => {
                                    if work(Ok(open)).await {
                                        break;
                                    }
                                }
                                None if tokio::time::Instant::now() >= deadline => {
                                    work(Err(store_error("it is unreachable"))).await;
                                    break;
                                }
                                None => tokio::time::sleep(Duration::from_millis(200)).await,
                            }
                        }
                    }
                });
            })?;
        ready_rx
            .recv()
            .map_err(|_| store_error("its thread ended before connecting"))??;
        connected.store(true, Ordering::Relaxed);
        Ok(PgJobStore {
            work: std::sync::Mutex::new(Some(work_tx)),
            events,
            connected,
        })
    }

    /// Runs `f` with the connection on the store's thread and waits for its answer. Should the
    /// connection be lost while `f` runs, `f` runs again once it is back.
    fn call<T: Send + 'static>(
        &self,
        f: impl for<'c> Fn(&'c Client) -> BoxFuture<'c, Result<T, EngineError>> + Send + Sync + 'static,
    ) -> Result<T, EngineError> {
        let (tx, rx) = mpsc::channel();
        let f = Arc::new(f);
        let work: Work = Box::new(move |client| {
            let (f, tx) = (f.clone(), tx.clone());
            Box::pin(async move {
                match client {
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        true
                    }
                    Ok(client) => {
                        let answer = f(client).await;
                        if answer.is_err() && client.is_closed() {
                            return false;
                        }
                        let _ = tx.send(answer);
                        true
                    }
                }
            })
        });
        self.work
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .ok_or_else(|| store_error("it was closed at shutdown"))?
            .send(work)
            .map_err(|_| store_error("its thread has ended"))?;
        rx.recv().map_err(|_| store_error("its thread has ended"))?
    }
}

/// How long work waits for a lost connection to come back before it fails.
const RECONNECT_FOR: Duration = Duration::from_secs(30);

/// Connects, brings the schema up to date and listens for job changes, which the connection's
/// task turns into events.
async fn open(url: &str, announce: &broadcast::Sender<StoreEvent>) -> Result<Client, EngineError> {
    let (client, mut connection) = tokio_postgres::connect(url, NoTls)
        .await
        .map_err(store_error)?;
    let announce = announce.clone();
    tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    if let Some(event) = parse_event(n.payload()) {
                        let _ = announce.send(event);
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %e, "the job store's connection ended");
                    return;
                }
            }
        }
    });
    migrate(&client).await?;
    client
        .batch_execute(&format!("LISTEN {EVENTS}"))
        .await
        .map_err(store_error)?;
    Ok(client)
}

/// A notification's payload: `<uuid> <state>` or `<uuid> removed`.
fn parse_event(payload: &str) -> Option<StoreEvent> {
    let (id, what) = payload.split_once(' ')?;
    let uuid = uuid::Uuid::parse_str(id).ok()?.as_u128();
    let state = match what {
        "removed" => None,
        other => Some(*JobState::ALL.iter().find(|s| s.as_str() == other)?),
    };
    Some(StoreEvent { uuid, state })
}

async fn migrate(client: &Client) -> Result<(), EngineError> {
    client
        .batch_execute("CREATE TABLE IF NOT EXISTS pq_schema (version integer NOT NULL)")
        .await
        .map_err(store_error)?;
    client.batch_execute("BEGIN").await.map_err(store_error)?;
    let migrated = async {
        client
            .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await?;
        let version: i32 = client
            .query_opt("SELECT version FROM pq_schema", &[])
            .await?
            .map(|row| row.get(0))
            .unwrap_or(0);
        for (step, sql) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
            client.batch_execute(sql).await?;
            let reached = step as i32 + 1;
            client.execute("DELETE FROM pq_schema", &[]).await?;
            client
                .execute("INSERT INTO pq_schema VALUES ($1)", &[&reached])
                .await?;
            tracing::info!(version = reached, "the job store's schema was migrated");
        }
        Ok::<_, tokio_postgres::Error>(())
    }
    .await;
    let end = if migrated.is_ok() {
        "COMMIT"
    } else {
        "ROLLBACK"
    };
    client.batch_execute(end).await.map_err(store_error)?;
    migrated.map_err(store_error)
}

/// A statement's parameters, owned so that they can go to the store's thread.
type Values = Vec<Box<dyn ToSql + Send + Sync>>;

impl PgJobStore {
    /// Runs one statement that answers no rows; answers how many rows it changed.
    fn execute(&self, sql: &'static str, values: Values) -> Result<u64, EngineError> {
        let values = Arc::new(values);
        self.call(move |client| {
            let values = values.clone();
            Box::pin(async move {
                let refs = as_params(&values);
                client.execute(sql, &refs).await.map_err(store_error)
            })
        })
    }

    /// Runs a query whose rows are a job's id and record; unreadable records are skipped.
    fn records(&self, sql: &'static str, values: Values) -> Result<Vec<JobRecord>, EngineError> {
        let rows = self.pairs(sql, values)?;
        Ok(readable(rows, "job record")
            .into_iter()
            .map(|(_, record)| record)
            .collect())
    }

    /// Runs a query that answers one number.
    fn number(&self, sql: &'static str) -> Result<i64, EngineError> {
        self.call(move |client| {
            Box::pin(async move {
                let row = client.query_one(sql, &[]).await.map_err(store_error)?;
                Ok(row.get::<_, i64>(0))
            })
        })
    }

    /// Runs a query whose rows are two texts (a key and a JSON document).
    fn pairs(
        &self,
        sql: &'static str,
        values: Values,
    ) -> Result<Vec<(String, String)>, EngineError> {
        let values = Arc::new(values);
        self.call(move |client| {
            let values = values.clone();
            Box::pin(async move {
                let refs = as_params(&values);
                let rows = client.query(sql, &refs).await.map_err(store_error)?;
                Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
            })
        })
    }
}

fn as_params(values: &Values) -> Vec<&(dyn ToSql + Sync)> {
    values
        .iter()
        .map(|v| v.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

/// Parses each JSON document, reporting and skipping unreadable ones (as the file store does).
fn readable<T: serde::de::DeserializeOwned>(
    rows: Vec<(String, String)>,
    what: &str,
) -> Vec<(String, T)> {
    rows.into_iter()
        .filter_map(|(key, text)| match serde_json::from_str(&text) {
            Ok(value) => Some((key, value)),
            Err(e) => {
                tracing::warn!(key, error = %e, "skipping an unreadable {what}");
                None
            }
        })
        .collect()
}

impl JobStore for PgJobStore {
    /// A compare-and-set: a job that ended keeps its end, and an attempt never overwrites a later
    /// one's record.
    fn save(&self, record: &JobRecord) -> Result<bool, EngineError> {
        let id = record.id.to_uuid();
        let seq = i64::try_from(record.id.seq).map_err(store_error)?;
        let text = serde_json::to_string(record).map_err(EngineError::internal)?;
        let owner = serde_json::to_string(&record.spec.owner).map_err(EngineError::internal)?;
        let expires = record.expires_at().map(|e| e.timestamp_millis());
        let values: Values = vec![
            Box::new(id),
            Box::new(seq),
            Box::new(text),
            Box::new(record.state.as_str()),
            Box::new(i32::try_from(record.attempt).unwrap_or(i32::MAX)),
            Box::new(record.instance.clone()),
            Box::new(owner),
            Box::new(expires),
        ];
        self.execute(SAVE_JOB, values).map(|changed| changed == 1)
    }

    fn shared(&self) -> bool {
        true
    }

    fn claim(&self, record: &JobRecord, from: u32) -> Result<bool, EngineError> {
        let values: Values = vec![
            Box::new(record.id.to_uuid()),
            Box::new(serde_json::to_string(record).map_err(EngineError::internal)?),
            Box::new(record.state.as_str()),
            Box::new(i32::try_from(record.attempt).unwrap_or(i32::MAX)),
            Box::new(record.instance.clone()),
            Box::new(i32::try_from(from).unwrap_or(i32::MAX)),
        ];
        self.execute(
            "UPDATE pq_jobs SET record = $2, state = $3, attempt = $4, instance = $5
             WHERE id = $1 AND attempt = $6 AND state IN ('queued', 'running')",
            values,
        )
        .map(|changed| changed == 1)
    }

    fn reachable(&self) -> Result<(), EngineError> {
        if self.connected.load(Ordering::Relaxed) {
            Ok(())
        } else {
            Err(store_error("its connection is lost; reconnecting"))
        }
    }

    fn load(&self, job: JobRef) -> Result<Option<JobRecord>, EngineError> {
        let found = match job {
            JobRef::Uuid(uuid) => self.records(
                "SELECT id, record FROM pq_jobs WHERE id = $1",
                vec![Box::new(
                    uuid::Uuid::from_u128(uuid).hyphenated().to_string(),
                )],
            )?,
            JobRef::Seq(seq) => self.records(
                "SELECT id, record FROM pq_jobs WHERE seq = $1",
                vec![Box::new(i64::try_from(seq).map_err(store_error)?)],
            )?,
        };
        Ok(found.into_iter().next())
    }

    fn load_owned(&self, owner: Option<&Principal>) -> Result<Vec<JobRecord>, EngineError> {
        match owner {
            Some(owner) => self.records(
                "SELECT id, record FROM pq_jobs WHERE owner = $1::text::jsonb",
                vec![Box::new(
                    serde_json::to_string(owner).map_err(EngineError::internal)?,
                )],
            ),
            None => self.records("SELECT id, record FROM pq_jobs", Vec::new()),
        }
    }

    fn next_seq(&self) -> Result<u64, EngineError> {
        u64::try_from(self.number("SELECT nextval('pq_job_seq')")?).map_err(store_error)
    }

    fn heartbeat(&self, instance: &str, lease: Duration) -> Result<Vec<JobRecord>, EngineError> {
        self.execute(
            "INSERT INTO pq_instances VALUES ($1, now())
             ON CONFLICT (id) DO UPDATE SET seen = now()",
            vec![Box::new(instance.to_string())],
        )?;
        self.records(
            "SELECT id, record FROM pq_jobs
             WHERE state IN ('queued', 'running')
               AND (instance IS NULL OR instance NOT IN (
                   SELECT id FROM pq_instances WHERE seen > now() - make_interval(secs => $1)))",
            vec![Box::new(lease.as_secs_f64())],
        )
    }

    fn take_expired(&self) -> Result<Vec<JobId>, EngineError> {
        let now = chrono::Utc::now().timestamp_millis();
        self.call(move |client| {
            Box::pin(async move {
                let rows = client
                    .query(
                        "DELETE FROM pq_jobs WHERE expires_at <= $1 RETURNING id, seq",
                        &[&now],
                    )
                    .await
                    .map_err(store_error)?;
                Ok(rows
                    .iter()
                    .filter_map(|row| {
                        let uuid = uuid::Uuid::parse_str(row.get::<_, &str>(0)).ok()?;
                        let seq = u64::try_from(row.get::<_, i64>(1)).ok()?;
                        Some(JobId {
                            uuid: uuid.as_u128(),
                            seq,
                        })
                    })
                    .collect())
            })
        })
    }

    fn events(&self) -> Option<broadcast::Receiver<StoreEvent>> {
        Some(self.events.subscribe())
    }

    fn remove(&self, id: JobId) -> Result<(), EngineError> {
        self.execute(
            "DELETE FROM pq_jobs WHERE id = $1",
            vec![Box::new(id.to_uuid())],
        )
        .map(|_| ())
    }

    fn load_all(&self) -> Result<Vec<JobRecord>, EngineError> {
        self.records("SELECT id, record FROM pq_jobs ORDER BY seq", Vec::new())
    }

    fn sequence_high_water(&self) -> Result<u64, EngineError> {
        Ok(u64::try_from(self.number("SELECT high_water FROM pq_sequence")?).unwrap_or(0))
    }

    fn raise_sequence_high_water(&self, seq: u64) -> Result<(), EngineError> {
        let seq = i64::try_from(seq).map_err(store_error)?;
        self.execute(
            "UPDATE pq_sequence SET high_water = GREATEST(high_water, $1)",
            vec![Box::new(seq)],
        )
        .map(|_| ())
    }

    fn save_side(
        &self,
        table: &str,
        key: &str,
        value: &serde_json::Value,
    ) -> Result<(), EngineError> {
        let table = side_table_name(table)?.to_string();
        self.execute(
            "INSERT INTO pq_side (tbl, key, value) VALUES ($1, $2, $3)
             ON CONFLICT (tbl, key) DO UPDATE SET value = EXCLUDED.value",
            vec![
                Box::new(table),
                Box::new(key.to_string()),
                Box::new(value.to_string()),
            ],
        )
        .map(|_| ())
    }

    fn remove_side(&self, table: &str, key: &str) -> Result<(), EngineError> {
        let table = side_table_name(table)?.to_string();
        self.execute(
            "DELETE FROM pq_side WHERE tbl = $1 AND key = $2",
            vec![Box::new(table), Box::new(key.to_string())],
        )
        .map(|_| ())
    }

    /// Ends the store's thread once the work sent before is done, and its connection with it.
    fn close(&self) {
        self.work.lock().unwrap_or_else(|p| p.into_inner()).take();
    }

    fn load_side_one(
        &self,
        table: &str,
        key: &str,
    ) -> Result<Option<serde_json::Value>, EngineError> {
        let table = side_table_name(table)?.to_string();
        let rows = self.pairs(
            "SELECT key, value FROM pq_side WHERE tbl = $1 AND key = $2",
            vec![Box::new(table), Box::new(key.to_string())],
        )?;
        Ok(readable(rows, "side record")
            .into_iter()
            .next()
            .map(|(_, v)| v))
    }

    fn load_side(&self, table: &str) -> Result<Vec<(String, serde_json::Value)>, EngineError> {
        let table = side_table_name(table)?.to_string();
        let rows = self.pairs(
            "SELECT key, value FROM pq_side WHERE tbl = $1",
            vec![Box::new(table)],
        )?;
        Ok(readable(rows, "side record"))
    }
}

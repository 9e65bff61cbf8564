//! The job store on PostgreSQL (`store.url = "postgres://…"`): job records, the sequence's
//! high-water mark and the fronts' side records as rows, so that they live outside the process.
//!
//! The `JobStore` trait is synchronous (its writes come from the engine's writer thread), so one
//! thread of this store's own owns the connection and its small runtime; callers hand it work and
//! wait for the answer. The schema is versioned and brought up to date at connect, under an
//! advisory lock so that instances starting together do not race.

use std::sync::mpsc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls};

use super::id::JobId;
use super::job::JobRecord;
use super::store::{JobStore, side_table_name};
use crate::query::EngineError;

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
];

/// Any key: the advisory lock that serialises schema migrations.
const MIGRATION_LOCK: i64 = 0x7071_7565_7279; // "pquery"
/// The advisory lock an instance holds on its store for as long as it is connected: until cluster
/// mode is built, a store serves one instance (two would hand out the same sequence numbers).
const INSTANCE_LOCK: i64 = 0x7071_7565_7280;
/// How long a starting instance waits for the previous one to let go of the store (a restart).
const INSTANCE_LOCK_WAIT: Duration = Duration::from_secs(15);

type Work = Box<dyn for<'c> FnOnce(&'c Client) -> BoxFuture<'c, ()> + Send>;

/// A job store on one PostgreSQL database.
pub struct PgJobStore {
    /// `None` once closed.
    work: std::sync::Mutex<Option<mpsc::Sender<Work>>>,
}

fn store_error(e: impl std::fmt::Display) -> EngineError {
    EngineError::internal(format!("the job store (PostgreSQL) failed: {e}"))
}

impl PgJobStore {
    /// Connects to `url` (a libpq-style URL or key=value string), brings the schema up to date and
    /// takes the store for this instance, waiting a while for a previous instance to let go.
    pub fn connect(url: &str) -> Result<PgJobStore, EngineError> {
        PgJobStore::connect_waiting(url, INSTANCE_LOCK_WAIT)
    }

    /// [`PgJobStore::connect`], waiting at most `wait` for the store.
    pub fn connect_waiting(url: &str, wait: Duration) -> Result<PgJobStore, EngineError> {
        let (work_tx, work_rx) = mpsc::channel::<Work>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), EngineError>>();
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
                let client = runtime.block_on(async {
                    let (client, connection) = tokio_postgres::connect(&url, NoTls)
                        .await
                        .map_err(store_error)?;
                    tokio::spawn(async move {
                        if let Err(e) = connection.await {
                            tracing::error!(error = %e, "the job store's connection ended");
                        }
                    });
                    migrate(&client).await?;
                    hold_instance_lock(&client, wait).await?;
                    Ok::<_, EngineError>(client)
                });
                let client = match client {
                    Ok(client) => {
                        let _ = ready_tx.send(Ok(()));
                        client
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                for work in work_rx {
                    runtime.block_on(work(&client));
                }
            })?;
        ready_rx
            .recv()
            .map_err(|_| store_error("its thread ended before connecting"))??;
        Ok(PgJobStore {
            work: std::sync::Mutex::new(Some(work_tx)),
        })
    }

    /// Runs `f` with the connection on the store's thread and waits for its answer.
    fn call<T: Send + 'static>(
        &self,
        f: impl for<'c> FnOnce(&'c Client) -> BoxFuture<'c, Result<T, EngineError>> + Send + 'static,
    ) -> Result<T, EngineError> {
        let (tx, rx) = mpsc::channel();
        let work: Work = Box::new(move |client| {
            Box::pin(async move {
                let _ = tx.send(f(client).await);
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

async fn hold_instance_lock(client: &Client, wait: Duration) -> Result<(), EngineError> {
    client
        .batch_execute(&format!("SET lock_timeout = {}", wait.as_millis().max(1)))
        .await
        .map_err(store_error)?;
    let locked = client
        .execute("SELECT pg_advisory_lock($1)", &[&INSTANCE_LOCK])
        .await;
    client
        .batch_execute("SET lock_timeout = 0")
        .await
        .map_err(store_error)?;
    locked.map(|_| ()).map_err(|e| {
        store_error(format!(
            "another polyquery instance is using this store (one instance per store until \
             cluster mode is built): {e}"
        ))
    })
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
    /// Runs one statement that answers no rows.
    fn execute(&self, sql: &'static str, values: Values) -> Result<(), EngineError> {
        self.call(move |client| {
            Box::pin(async move {
                let refs = as_params(&values);
                client
                    .execute(sql, &refs)
                    .await
                    .map(|_| ())
                    .map_err(store_error)
            })
        })
    }

    /// Runs a query whose rows are two texts (a key and a JSON document).
    fn pairs(
        &self,
        sql: &'static str,
        values: Values,
    ) -> Result<Vec<(String, String)>, EngineError> {
        self.call(move |client| {
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
    fn save(&self, record: &JobRecord) -> Result<(), EngineError> {
        let id = record.id.to_uuid();
        let seq = i64::try_from(record.id.seq).map_err(store_error)?;
        let text = serde_json::to_string(record).map_err(EngineError::internal)?;
        self.execute(
            "INSERT INTO pq_jobs (id, seq, record) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET record = EXCLUDED.record",
            vec![Box::new(id), Box::new(seq), Box::new(text)],
        )
    }

    fn remove(&self, id: JobId) -> Result<(), EngineError> {
        self.execute(
            "DELETE FROM pq_jobs WHERE id = $1",
            vec![Box::new(id.to_uuid())],
        )
    }

    fn load_all(&self) -> Result<Vec<JobRecord>, EngineError> {
        let rows = self.pairs("SELECT id, record FROM pq_jobs ORDER BY seq", Vec::new())?;
        Ok(readable(rows, "job record")
            .into_iter()
            .map(|(_, record)| record)
            .collect())
    }

    fn sequence_high_water(&self) -> Result<u64, EngineError> {
        self.call(|client| {
            Box::pin(async move {
                let row = client
                    .query_one("SELECT high_water FROM pq_sequence", &[])
                    .await
                    .map_err(store_error)?;
                Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
            })
        })
    }

    fn raise_sequence_high_water(&self, seq: u64) -> Result<(), EngineError> {
        let seq = i64::try_from(seq).map_err(store_error)?;
        self.execute(
            "UPDATE pq_sequence SET high_water = GREATEST(high_water, $1)",
            vec![Box::new(seq)],
        )
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
    }

    fn remove_side(&self, table: &str, key: &str) -> Result<(), EngineError> {
        let table = side_table_name(table)?.to_string();
        self.execute(
            "DELETE FROM pq_side WHERE tbl = $1 AND key = $2",
            vec![Box::new(table), Box::new(key.to_string())],
        )
    }

    /// Ends the store's thread once the work sent before is done; its connection, and with it
    /// the instance lock, goes with it.
    fn close(&self) {
        self.work.lock().unwrap_or_else(|p| p.into_inner()).take();
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

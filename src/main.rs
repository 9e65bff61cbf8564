//! The `polyquery` command: serve the four wires, run SQL from the shell, replay contract cases,
//! and measure.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use futures::StreamExt;
use polyquery::config::{Config, LogFormat};
use polyquery::engine::{Engine, PgJobStore};
use polyquery::exec::Executor;
use polyquery::exec::datafusion::DataFusionExecutor;
use polyquery::server;

#[derive(Parser)]
#[command(
    name = "polyquery",
    version,
    about = "Four vendors' asynchronous-query HTTP APIs over one real SQL job engine"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Settings every subcommand that builds a catalog reads.
#[derive(clap::Args)]
struct Settings {
    /// A TOML configuration file (environment POLYQUERY_CONFIG).
    #[arg(long, env = "POLYQUERY_CONFIG")]
    config: Option<PathBuf>,
    /// Sets any configuration key, e.g. --set engine.workers=8 (repeatable; wins over file and environment).
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_pair)]
    set: Vec<(String, String)>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve all four dialects (defaults: 127.0.0.1:8080, embedded DataFusion, the fixtures).
    Serve {
        #[command(flatten)]
        settings: Settings,
        /// Address to listen on (key `listen`, environment POLYQUERY_LISTEN).
        #[arg(long)]
        listen: Option<String>,
        /// Where jobs and results are kept (key `data_dir`, environment POLYQUERY_DATA_DIR).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Allow a non-loopback address with no users configured (key `allow_anonymous`).
        #[arg(long)]
        allow_anonymous: bool,
        /// `text` or `json` log lines (key `log_format`).
        #[arg(long)]
        log_format: Option<String>,
    },
    /// Run one query against the catalog and print its result.
    Sql {
        #[command(flatten)]
        settings: Settings,
        /// The SQL to run.
        query: String,
        /// Output format: csv, json, ndjson, xml, md, txt, html, arrow, parquet, xlsx, sqlite.
        #[arg(long, default_value = "csv")]
        format: String,
    },
    /// Replay a dialect's contract cases against a server (ours or the vendor's).
    Contract {
        /// luminesce, asterixdb, looker or kylin.
        #[arg(long)]
        dialect: String,
        /// Base URL of the server to check, e.g. http://127.0.0.1:8080.
        #[arg(long)]
        target: String,
        /// The folder of case files (default: dialects/<dialect> of this checkout).
        #[arg(long)]
        cases: Option<PathBuf>,
    },
    /// Fuzz every SQL entry point and client-text parser (build with --release for long runs).
    Fuzz {
        /// One target (luminesce-sql, asterixdb-sqlpp, kylin-sql, engine-sql, luminesce-filter,
        /// looker-filter); default: all of them.
        #[arg(long)]
        target: Option<String>,
        /// Inputs per target.
        #[arg(long, default_value_t = 1_000_000)]
        executions: u64,
        /// Where the random inputs start (a run with the same seed makes the same inputs).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Milliseconds of CPU time one input may take before it counts as a finding.
        #[arg(long, default_value_t = 1_000)]
        budget_ms: u64,
        /// A directory to write each finding's whole input to (`<target>-<n>.txt`), to replay it.
        #[arg(long)]
        findings: Option<PathBuf>,
    },
    /// A round-robin load balancer in front of a cluster's instances (each request to the next).
    Balance {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// An instance's base URL, e.g. http://127.0.0.1:8081 (repeatable).
        #[arg(long = "to", required = true)]
        to: Vec<String>,
    },
    /// Measure the engine and the encoders against DataFusion run directly (build with --release).
    Bench(polyquery::bench::BenchSizes),
}

fn parse_pair(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .ok_or_else(|| format!("expected KEY=VALUE, got `{s}`"))
}

fn main() -> ExitCode {
    let keys: Vec<String> = Config::documented_keys()
        .into_iter()
        .map(|(k, v)| format!("  {k:<34} default {v}"))
        .collect();
    let help = format!(
        "Every setting is a key in the --config file, an environment variable POLYQUERY_<KEY> (dots become \
         double underscores: POLYQUERY_ENGINE__WORKERS=8), or --set KEY=VALUE.\nKeys and defaults:\n{}",
        keys.join("\n")
    );
    let command = Cli::command().mut_subcommand("serve", |c| {
        c.after_long_help(help.clone()).after_help(help.clone())
    });
    let cli = match Cli::from_arg_matches(&command.get_matches()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    // Stacks as big as the engine's: a request handler is polled with at least the red zone of
    // stack left (`guard::on_big_stack`), and on a 2 MB thread that meant mapping and unmapping a
    // fresh 64 MB stack on every poll (measured: a fifth of the CPU of a status-poll load).
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("pq-http")
        .thread_stack_size(polyquery::sql::guard::STACK_SIZE)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("polyquery: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve {
                settings,
                listen,
                data_dir,
                allow_anonymous,
                log_format,
            } => {
                let mut flags = settings.set.clone();
                flags.extend(listen.map(|v| ("listen".to_string(), format!("\"{v}\""))));
                flags.extend(
                    data_dir.map(|v| ("data_dir".to_string(), format!("\"{}\"", v.display()))),
                );
                flags.extend(log_format.map(|v| ("log_format".to_string(), format!("\"{v}\""))));
                if allow_anonymous {
                    flags.push(("allow_anonymous".into(), "true".into()));
                }
                let config = load_config(&settings, &flags)?;
                serve(config).await
            }
            Command::Sql {
                settings,
                query,
                format,
            } => {
                let config = load_config(&settings, &settings.set)?;
                init_logging(LogFormat::Text, "warn");
                run_sql(&config, &query, &format).await
            }
            Command::Contract {
                dialect,
                target,
                cases,
            } => contract(&dialect, &target, cases).await,
            Command::Fuzz {
                target,
                executions,
                seed,
                budget_ms,
                findings,
            } => {
                init_logging(LogFormat::Text, "error");
                fuzz(
                    target.as_deref(),
                    executions,
                    seed,
                    budget_ms,
                    findings.as_deref(),
                )
                .await
            }
            Command::Balance { listen, to } => {
                init_logging(LogFormat::Text, "info");
                let listener = tokio::net::TcpListener::bind(&listen)
                    .await
                    .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
                if let Ok(addr) = listener.local_addr() {
                    tracing::info!(address = %addr, instances = ?to, "polyquery balancing");
                }
                polyquery::balance::serve(listener, to)
                    .await
                    .map_err(|e| e.to_string())
            }
            Command::Bench(sizes) => {
                init_logging(LogFormat::Text, "warn");
                polyquery::bench::run(sizes)
                    .await
                    .map_err(|e| e.to_string())
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("polyquery: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn fuzz(
    target: Option<&str>,
    executions: u64,
    seed: u64,
    budget_ms: u64,
    findings_dir: Option<&std::path::Path>,
) -> Result<(), String> {
    use polyquery::fuzz::{self, Target};
    let targets = match target {
        Some(name) => vec![Target::parse(name).ok_or_else(|| format!("no fuzz target `{name}`"))?],
        None => Target::ALL.to_vec(),
    };
    let executor = DataFusionExecutor::new(1, &[])
        .await
        .map_err(|e| e.to_string())?;
    let budget = std::time::Duration::from_millis(budget_ms);
    let mut found = 0;
    for target in targets {
        // The targets run on a thread with the query threads' stack, as they do when served.
        let report = std::thread::scope(|scope| {
            std::thread::Builder::new()
                .stack_size(polyquery::sql::guard::STACK_SIZE)
                .spawn_scoped(scope, || {
                    fuzz::run(&executor, target, executions, seed, budget)
                })
                .map_err(|e| e.to_string())?
                .join()
                .map_err(|_| "the fuzz thread panicked".to_string())
        })?;
        println!("{report}");
        let slowest: String = report.slowest_input.chars().take(200).collect();
        println!(
            "  slowest input ({} bytes): {slowest:?}",
            report.slowest_input.len()
        );
        for (n, finding) in report.findings.iter().enumerate() {
            let shown: String = finding.input.chars().take(300).collect();
            println!("  {}: {shown:?}", finding.what);
            if let Some(dir) = findings_dir {
                let path = dir.join(format!("{}-{}.txt", target.name(), n + 1));
                std::fs::create_dir_all(dir)
                    .and_then(|()| std::fs::write(&path, &finding.input))
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                println!("    written to {}", path.display());
            }
        }
        found += report.findings.len();
    }
    if found == 0 {
        Ok(())
    } else {
        Err(format!("{found} findings"))
    }
}

fn load_config(settings: &Settings, flags: &[(String, String)]) -> Result<Config, String> {
    Config::load(settings.config.as_deref(), std::env::vars(), flags).map_err(|e| e.to_string())
}

fn init_logging(format: LogFormat, default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("POLYQUERY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colours only for a person at a terminal, never in files or CI logs.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

async fn serve(config: Config) -> Result<(), String> {
    init_logging(config.log_format, "info");
    config.check_exposure().map_err(|e| e.to_string())?;
    let executor = DataFusionExecutor::new(config.engine.partitions, &config.tables)
        .await
        .map_err(|e| e.to_string())?;
    let tables = executor.catalog().tables.len();
    let engine_config = config.engine_config()?;
    let engine = match &config.store.url {
        Some(url) => PgJobStore::connect(url).and_then(|store| {
            Engine::start_with_store(engine_config, Arc::new(executor), Arc::new(store))
        }),
        None => Engine::start(engine_config, Arc::new(executor)),
    }
    .map_err(|e| format!("{}: {e}", config.data_dir.display()))?;
    let listeners = server::bind_all(&config)
        .await
        .map_err(|e| format!("cannot listen: {e}"))?;
    for l in &listeners {
        if let Ok(addr) = l.local_addr() {
            tracing::info!(address = %addr, dialect = l.only.unwrap_or("all"), tables, data_dir = %config.data_dir.display(), "polyquery listening");
        }
    }
    let app = server::App::new(engine, Arc::new(config));
    server::serve(app, listeners, shutdown_signal()).await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}

async fn run_sql(config: &Config, query: &str, format: &str) -> Result<(), String> {
    let format = polyquery::encode::Format::parse(format)
        .ok_or_else(|| format!("unknown format `{format}`"))?;
    let executor = DataFusionExecutor::new(config.engine.partitions, &config.tables)
        .await
        .map_err(|e| e.to_string())?;
    let mut stream = executor
        .execute(query, &Default::default())
        .await
        .map_err(|e| e.to_string())?;
    let options = polyquery::encode::EncodeOptions::default();
    let mut encoder = polyquery::encode::encoder(
        format,
        &options,
        stream.schema(),
        Box::new(std::io::stdout()),
    )
    .map_err(|e| e.to_string())?;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(|e| polyquery::exec::classify_error(e).to_string())?;
        encoder.write_batch(&batch).map_err(|e| e.to_string())?;
    }
    encoder.finish().map_err(|e| e.to_string())
}

async fn contract(dialect: &str, target: &str, cases: Option<PathBuf>) -> Result<(), String> {
    let dir = cases.unwrap_or_else(|| polyquery::contract::default_dir(dialect));
    let outcomes = polyquery::contract::replay(&dir, target).await?;
    if outcomes.is_empty() {
        return Err(format!(
            "no contract cases in {} (they arrive with the {dialect} dialect)",
            dir.display()
        ));
    }
    let failed = outcomes.iter().filter(|o| o.failure.is_some()).count();
    for o in &outcomes {
        match &o.failure {
            None => println!("ok    {} :: {}", o.file, o.case),
            Some(f) => println!("FAIL  {} :: {}\n      {f}", o.file, o.case),
        }
    }
    println!("{} passed, {failed} failed", outcomes.len() - failed);
    if failed == 0 {
        Ok(())
    } else {
        Err(format!("{failed} contract case(s) failed against {target}"))
    }
}

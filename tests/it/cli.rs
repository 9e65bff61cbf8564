//! The `polyquery` command line, run as a user runs it.

use std::process::Command;

use polyquery::exec::Executor;

fn polyquery() -> Command {
    Command::new(env!("CARGO_BIN_EXE_polyquery"))
}

/// `polyquery sql QUERY`, which must succeed; its standard output.
fn sql_output(query: &str) -> String {
    let out = polyquery().args(["sql", query]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn sql_prints_the_result_of_a_query_over_the_catalog() {
    let text = sql_output("select count(*) as n from kylin_sales");
    let count: usize = text.lines().nth(1).unwrap().trim().parse().unwrap();
    assert_eq!(text.lines().next(), Some("n"));
    assert!(count > 0, "kylin_sales should not be empty");
    let executor = crate::support::executor().await;
    let table = executor
        .catalog()
        .table("KYLIN_SALES")
        .expect("the Kylin sample is in the catalog");
    assert_eq!(Some(count), table.row_count);
}

/// Names resolve against the tables the query reads, as over HTTP: thelook's `users.country` and
/// `products.name` do not make KYLIN_COUNTRY's columns ambiguous.
#[test]
fn sql_resolves_names_against_the_tables_it_reads() {
    let text = sql_output("select COUNTRY, NAME from KYLIN_COUNTRY order by COUNTRY limit 2");
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        ["COUNTRY,NAME", "AR,Argentina", "AT,Austria"]
    );
}

#[test]
fn sql_reports_a_bad_query_as_one_line_and_fails() {
    let out = polyquery()
        .args(["sql", "select nope from kylin_sales"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.starts_with("polyquery: ") && err.contains("nope"),
        "{err}"
    );
}

#[test]
fn serve_refuses_a_public_address_without_users_unless_told() {
    let dir = tempfile::tempdir().unwrap();
    let out = polyquery()
        .args(["serve", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("--allow-anonymous"), "{err}");
}

#[test]
fn serve_refuses_a_public_dialect_address_without_users_too() {
    for key in [
        "luminesce.listen",
        "asterixdb.listen",
        "looker.listen",
        "kylin.listen",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut child = polyquery()
            .args(["serve", "--listen", "127.0.0.1:0", "--set"])
            .arg(format!("{key}=\"0.0.0.0:0\""))
            .arg("--data-dir")
            .arg(dir.path())
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Before the fix the server started and served anonymously on every interface.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        let status = status.unwrap_or_else(|| panic!("{key}: serve started on 0.0.0.0"));
        assert!(!status.success(), "{key}");
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        assert!(
            err.contains(key) && err.contains("--allow-anonymous"),
            "{err}"
        );
    }
}

#[test]
fn a_bad_config_file_is_one_line_naming_file_key_and_problem() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("polyquery.toml");
    std::fs::write(&file, "[limits]\nmax_body_bytes = \"lots\"\n").unwrap();
    let out = polyquery()
        .args(["serve", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("polyquery.toml")
            && err.contains("`limits.max_body_bytes`")
            && err.contains("lots"),
        "{err}"
    );
}

#[test]
fn serve_help_lists_every_setting() {
    let out = polyquery().args(["serve", "--help"]).output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for (key, _) in polyquery::config::Config::documented_keys() {
        assert!(help.contains(&key), "serve --help lacks {key}");
    }
    assert!(help.contains("POLYQUERY_ENGINE__WORKERS"));
}

/// `polyquery fuzz --findings DIR` writes each finding's whole input there, to replay it (a zero
/// budget makes every input a finding).
#[test]
fn fuzz_writes_each_findings_input_to_replay_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = polyquery()
        .args([
            "fuzz",
            "--target",
            "looker-filter",
            "--executions",
            "3",
            "--budget-ms",
            "0",
            "--findings",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success(), "findings fail the run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("looker-filter-1.txt"), "{stdout}");
    assert!(dir.path().join("looker-filter-1.txt").is_file(), "{stdout}");
}

//! Throwaway databases for tests: each test gets its own MySQL database (or SQLite file), so
//! tests run in parallel without colliding, and the database is dropped afterwards.

use std::time::Duration;

/// Where the MySQL/MariaDB server for tests is: `JBK_TEST_MYSQL_URL`, by default the machine's
/// MariaDB (`mysql://root@127.0.0.1:3306/test`).
pub fn mysql_admin_url() -> String {
    std::env::var("JBK_TEST_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into())
}

/// True when tests that need a service must fail rather than skip (set by `.ci/run`).
pub fn services_required() -> bool {
    std::env::var("JBK_REQUIRE_SERVICES").map(|v| v == "1").unwrap_or(false)
}

/// Says that a test is skipped because `what` is missing: a `SKIPPED:` line on stderr (libtest
/// shows it only for a failing test, or with `--nocapture`) and, when `JBK_SKIP_LOG` names a
/// file, the same line appended to it. `.ci/run` sets `JBK_SKIP_LOG` and fails when the file is
/// not empty afterwards: the backstop for a skip path that forgets `services_required()`.
pub fn skipped(what: &str) {
    let line = format!("SKIPPED: {what}");
    eprintln!("{line}");
    if let Some(path) = std::env::var_os("JBK_SKIP_LOG") {
        use std::io::Write;
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| writeln!(f, "{line}"));
        if let Err(e) = written {
            panic!("{line} (and could not append it to JBK_SKIP_LOG {}: {e})", path.to_string_lossy());
        }
    }
}

/// A MySQL database created for one test and dropped when this value is dropped.
pub struct TestMySql {
    pub url: String,
    name: String,
    admin: String,
}

impl TestMySql {
    /// Creates a fresh database, or returns `None` (after saying so on stderr) when no server
    /// answers and `JBK_REQUIRE_SERVICES` is not set. With it set, a missing server panics.
    pub async fn create() -> Option<TestMySql> {
        use sqlx::{Connection, Executor};
        let admin = mysql_admin_url();
        let conn = tokio::time::timeout(Duration::from_secs(5), sqlx::MySqlConnection::connect(&admin)).await;
        let mut conn = match conn {
            Ok(Ok(c)) => c,
            other => {
                let why = match other {
                    Ok(Err(e)) => e.to_string(),
                    _ => "timed out".into(),
                };
                if services_required() {
                    panic!("MySQL/MariaDB at {admin} is required (JBK_REQUIRE_SERVICES=1): {why}");
                }
                skipped(&format!("MySQL/MariaDB test, no server at {admin}: {why}"));
                return None;
            }
        };
        let name = format!("jbk_t_{:016x}", rand::random::<u64>());
        conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name} CHARACTER SET utf8mb4")))
            .await
            .expect("create test database");
        let base = admin.rsplit_once('/').map(|(b, _)| b.to_owned()).unwrap_or(admin.clone());
        Some(TestMySql { url: format!("{base}/{name}"), name, admin })
    }
}

impl Drop for TestMySql {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let name = self.name.clone();
        // Drop runs outside any runtime guarantee: use a small thread with its own runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build();
            if let Ok(rt) = rt {
                rt.block_on(async {
                    use sqlx::{Connection, Executor};
                    if let Ok(mut c) = sqlx::MySqlConnection::connect(&admin).await {
                        let _ = c.execute(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}"))).await;
                    }
                });
            }
        })
        .join();
    }
}

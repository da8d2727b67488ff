//! Connecting to the database and applying migrations.

use crate::StorageError;
use sqlx::any::AnyPoolOptions;
use sqlx::AnyConnection;
use sqlx::{AnyPool, Executor};
use std::time::Duration;

/// Which SQL dialect the pool speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    MySql,
}

impl Dialect {
    pub fn from_url(url: &str) -> Result<Self, StorageError> {
        if url.starts_with("sqlite:") {
            Ok(Dialect::Sqlite)
        } else if url.starts_with("mysql:") || url.starts_with("mariadb:") {
            Ok(Dialect::MySql)
        } else {
            Err(StorageError::UnsupportedUrl)
        }
    }
    /// The query that reads the id the connection's last `INSERT` generated.
    pub(crate) fn last_insert_id(self) -> &'static str {
        match self {
            Dialect::Sqlite => "SELECT last_insert_rowid()",
            Dialect::MySql => "SELECT LAST_INSERT_ID()",
        }
    }
    /// `INSERT` that skips rows breaking a unique key.
    /// What a `SELECT` ends with to lock the rows it reads until the transaction ends (MySQL);
    /// SQLite's write transactions (`BEGIN IMMEDIATE`) are serial already.
    pub(crate) fn for_update(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::MySql => " FOR UPDATE",
        }
    }
    pub(crate) fn insert_ignore(self) -> &'static str {
        match self {
            Dialect::Sqlite => "INSERT OR IGNORE",
            Dialect::MySql => "INSERT IGNORE",
        }
    }
}

/// How SQLite makes a commit durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SqliteSync {
    /// fsync of the WAL on every commit: an acked message survives a crash of the process and
    /// a loss of power. The default.
    #[default]
    Full,
    /// No fsync per commit (WAL mode): an acked message survives `kill -9` of the process (the
    /// kernel has the write) but the last commits may be lost if the machine loses power.
    Normal,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct StoreOptions {
    pub sqlite_sync: SqliteSync,
}

/// The SQL implementation of every store port. Cheap to clone (a pool handle).
#[derive(Clone)]
pub struct SqlStore {
    pub(crate) pool: AnyPool,
    pub(crate) dialect: Dialect,
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static MYSQL_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/mysql");

impl SqlStore {
    /// The pool, for tests and tools that check what the schema itself enforces (the audit
    /// log's triggers). Application code goes through the ports.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Connects and applies pending migrations. `url` is `sqlite:PATH` (created if missing) or
    /// `mysql://user:pass@host:port/db`.
    /// Connects with the default (fully durable) options.
    pub async fn connect(url: &str) -> Result<Self, StorageError> {
        Self::connect_with(url, StoreOptions::default()).await
    }

    pub async fn connect_with(url: &str, options: StoreOptions) -> Result<Self, StorageError> {
        sqlx::any::install_default_drivers();
        let dialect = Dialect::from_url(url)?;
        let url = match dialect {
            Dialect::Sqlite if !url.contains("mode=") => {
                format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' })
            }
            Dialect::MySql if url.starts_with("mariadb:") => url.replacen("mariadb:", "mysql:", 1),
            _ => url.to_owned(),
        };
        let options = AnyPoolOptions::new()
            .acquire_timeout(Duration::from_secs(5))
            .max_connections(match dialect {
                Dialect::Sqlite => 4,
                Dialect::MySql => 16,
            })
            .after_connect(move |conn: &mut AnyConnection, _| {
                Box::pin(async move {
                    if dialect == Dialect::Sqlite {
                        // WAL lets readers run beside the one writer; FULL makes each commit
                        // durable (fsync) before it returns, so an ack survives power loss too.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute(match options.sqlite_sync {
                            SqliteSync::Full => "PRAGMA synchronous = FULL",
                            SqliteSync::Normal => "PRAGMA synchronous = NORMAL",
                        })
                        .await?;
                        conn.execute("PRAGMA busy_timeout = 5000").await?;
                        // Deleted and overwritten content is zeroed, not left in free space:
                        // an erased account leaves nothing readable in the file.
                        conn.execute("PRAGMA secure_delete = ON").await?;
                    }
                    Ok(())
                })
            });
        let pool = options.connect(&url).await?;
        let store = SqlStore { pool, dialect };
        store.migrate().await?;
        Ok(store)
    }

    pub async fn migrate(&self) -> Result<(), StorageError> {
        match self.dialect {
            Dialect::Sqlite => SQLITE_MIGRATIONS.run(&self.pool).await?,
            Dialect::MySql => {
                // Nodes of a cluster start together: one migrates, the others wait for it and
                // then find nothing to do. The lock is per database, on this one connection.
                let mut conn = self.pool.acquire().await?;
                sqlx::query("SELECT GET_LOCK(CONCAT('jbk_migrate:', DATABASE()), 120)").execute(&mut *conn).await?;
                let done = MYSQL_MIGRATIONS.run_direct(None, &mut *conn, false).await;
                let _ = sqlx::query("SELECT RELEASE_LOCK(CONCAT('jbk_migrate:', DATABASE()))").execute(&mut *conn).await;
                done?;
            }
        }
        Ok(())
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// True when a trivial query answers (for `/readyz`).
    /// Bounded by a second, so that `/readyz` answers quickly while the database is away.
    pub async fn ping(&self) -> bool {
        matches!(tokio::time::timeout(Duration::from_secs(1), sqlx::query("SELECT 1").execute(&self.pool)).await, Ok(Ok(_)))
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

//! Test support: a fresh PostgreSQL database per test, dropped afterwards, and the
//! number of commits on SQLite's write connections.

use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

/// The environment variable naming the PostgreSQL server tests may use.
pub const TEST_DATABASE_URL_VAR: &str = "BATON_TEST_DATABASE_URL";

/// A database created for one test on the server named by `BATON_TEST_DATABASE_URL`.
pub struct PgTestDatabase {
    admin_url: String,
    name: String,
    /// Connection URL of the new database.
    pub url: String,
}

impl PgTestDatabase {
    /// `None` when `BATON_TEST_DATABASE_URL` is unset (tests then use SQLite).
    pub async fn create() -> Option<Self> {
        let admin_url = std::env::var(TEST_DATABASE_URL_VAR).ok().filter(|u| !u.is_empty())?;
        let name = format!("baton_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnectOptions::from_str(&admin_url)
            .expect("BATON_TEST_DATABASE_URL is a PostgreSQL URL")
            .connect()
            .await
            .expect("connect to BATON_TEST_DATABASE_URL");
        sqlx::query(&format!("CREATE DATABASE \"{name}\"")).execute(&mut conn).await.expect("create test database");
        conn.close().await.ok();
        let url = with_database(&admin_url, &name);
        Some(Self { admin_url, name, url })
    }
}

/// `url` with its database name replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[authority_start..].find('/') {
        Some(i) => &base[..authority_start + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

impl Drop for PgTestDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs outside any async context we can rely on: use a private runtime.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            rt.block_on(async move {
                let mut conn = PgConnectOptions::from_str(&admin_url).ok()?.connect().await.ok()?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .execute(&mut conn)
                    .await
                    .ok()?;
                conn.close().await.ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("warning: could not drop test database {}", self.name);
        }
    }
}

/// Transactions committed on the write connections of every SQLite store of this
/// process so far (SQLite's commit hook; each autocommit statement that writes counts).
pub fn sqlite_commits() -> u64 {
    SQLITE_COMMITS.load(std::sync::atomic::Ordering::SeqCst)
}

pub(crate) static SQLITE_COMMITS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

#[cfg(test)]
mod tests {
    #[test]
    fn database_name_is_replaced() {
        assert_eq!(super::with_database("postgres://u@h:5432/postgres", "x"), "postgres://u@h:5432/x");
        assert_eq!(super::with_database("postgres://h/db?sslmode=disable", "x"), "postgres://h/x?sslmode=disable");
        assert_eq!(super::with_database("postgres://h", "x"), "postgres://h/x");
    }
}

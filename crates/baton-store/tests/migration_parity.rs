//! The SQLite and PostgreSQL migration trees define the same schema: both are migrated
//! fresh and what each catalogue says is compared — tables, columns with their kinds,
//! nullability, primary keys, unique constraints and indexes (columns, uniqueness,
//! partial or not). A column, index or constraint added to one tree only fails here.
//!
//! Needs both backends: it runs where `BATON_TEST_DATABASE_URL` names a PostgreSQL
//! server (as in CI) and says so where it does not.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use baton_store::testing::PgTestDatabase;
use baton_store::{PostgresStore, SqliteStore, Store};
use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Row};

/// One fact of a schema, comparable across the two engines.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Fact {
    Table(String),
    /// Table, column, kind, nullable.
    Column(String, String, Kind, bool),
    PrimaryKey(String, Vec<String>),
    /// Table, columns, partial: a unique constraint or unique index, whatever its name.
    Unique(String, Vec<String>, bool),
    /// A non-unique index: name, table, columns, partial.
    Index(String, String, Vec<String>, bool),
}

impl fmt::Display for Fact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fact::Table(t) => write!(f, "table {t}"),
            Fact::Column(t, c, k, null) => {
                write!(f, "column {t}.{c} {k:?} {}", if *null { "NULL" } else { "NOT NULL" })
            }
            Fact::PrimaryKey(t, cols) => write!(f, "primary key {t} ({})", cols.join(", ")),
            Fact::Unique(t, cols, partial) => {
                write!(f, "unique {t} ({}){}", cols.join(", "), if *partial { " partial" } else { "" })
            }
            Fact::Index(name, t, cols, partial) => {
                write!(f, "index {name} on {t} ({}){}", cols.join(", "), if *partial { " partial" } else { "" })
            }
        }
    }
}

/// The column kinds portable SQL uses (`docs/design.md`, Storage).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Text,
    Integer,
    Boolean,
    Bytes,
    Other,
}

fn sqlite_kind(declared: &str) -> Kind {
    match declared.to_ascii_uppercase().as_str() {
        "TEXT" => Kind::Text,
        "BIGINT" | "INTEGER" => Kind::Integer,
        "BOOLEAN" => Kind::Boolean,
        "BLOB" => Kind::Bytes,
        _ => Kind::Other,
    }
}

fn postgres_kind(data_type: &str) -> Kind {
    match data_type {
        "text" => Kind::Text,
        "bigint" | "integer" => Kind::Integer,
        "boolean" => Kind::Boolean,
        "bytea" => Kind::Bytes,
        _ => Kind::Other,
    }
}

/// Tables the migrators keep for themselves.
fn is_bookkeeping(table: &str) -> bool {
    table.starts_with("_sqlx") || table.starts_with("sqlite_")
}

async fn sqlite_facts(path: &std::path::Path) -> BTreeSet<Fact> {
    let mut conn = SqliteConnectOptions::new().filename(path).read_only(true).connect().await.expect("open SQLite");
    let mut facts = BTreeSet::new();
    let tables: Vec<String> = sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    for table in tables.into_iter().filter(|t| !is_bookkeeping(t)) {
        facts.insert(Fact::Table(table.clone()));
        let columns = sqlx::query("SELECT name, type, \"notnull\", pk FROM pragma_table_info(?) ORDER BY cid")
            .bind(&table)
            .fetch_all(&mut conn)
            .await
            .unwrap();
        let mut primary: Vec<(i64, String)> = Vec::new();
        for c in &columns {
            let (name, declared): (String, String) = (c.get(0), c.get(1));
            let (not_null, pk): (bool, i64) = (c.get(2), c.get(3));
            if pk > 0 {
                primary.push((pk, name.clone()));
            }
            // A primary key column is never NULL, whatever SQLite lets it declare.
            facts.insert(Fact::Column(table.clone(), name, sqlite_kind(&declared), !not_null && pk == 0));
        }
        primary.sort();
        if !primary.is_empty() {
            facts.insert(Fact::PrimaryKey(table.clone(), primary.into_iter().map(|(_, c)| c).collect()));
        }
        let indexes = sqlx::query("SELECT name, \"unique\", origin, partial FROM pragma_index_list(?)")
            .bind(&table)
            .fetch_all(&mut conn)
            .await
            .unwrap();
        for i in indexes {
            let (name, unique, origin, partial): (String, bool, String, bool) =
                (i.get(0), i.get(1), i.get(2), i.get(3));
            if origin == "pk" {
                continue;
            }
            let columns: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_index_info(?) ORDER BY seqno")
                .bind(&name)
                .fetch_all(&mut conn)
                .await
                .unwrap();
            facts.insert(if unique {
                Fact::Unique(table.clone(), columns, partial)
            } else {
                Fact::Index(name, table.clone(), columns, partial)
            });
        }
    }
    facts
}

async fn postgres_facts(url: &str) -> BTreeSet<Fact> {
    let mut conn = PgConnectOptions::from_str(url).unwrap().connect().await.expect("connect to PostgreSQL");
    let mut facts = BTreeSet::new();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables
         WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    for table in tables.into_iter().filter(|t| !is_bookkeeping(t)) {
        facts.insert(Fact::Table(table.clone()));
        let columns = sqlx::query(
            "SELECT column_name::text, data_type::text, is_nullable = 'YES' FROM information_schema.columns
             WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position",
        )
        .bind(&table)
        .fetch_all(&mut conn)
        .await
        .unwrap();
        for c in columns {
            let (name, data_type, nullable): (String, String, bool) = (c.get(0), c.get(1), c.get(2));
            facts.insert(Fact::Column(table.clone(), name, postgres_kind(&data_type), nullable));
        }
        // Every index, with its columns in key order; expression keys come out unnamed.
        let indexes = sqlx::query(
            "SELECT ic.relname::text, i.indisprimary, i.indisunique, i.indpred IS NOT NULL,
                    ARRAY(SELECT coalesce(a.attname::text, '(expression)')
                          FROM unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)
                          LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                          ORDER BY k.n)
             FROM pg_index i
             JOIN pg_class ic ON ic.oid = i.indexrelid
             JOIN pg_class tc ON tc.oid = i.indrelid
             JOIN pg_namespace ns ON ns.oid = tc.relnamespace
             WHERE ns.nspname = 'public' AND tc.relname = $1",
        )
        .bind(&table)
        .fetch_all(&mut conn)
        .await
        .unwrap();
        for i in indexes {
            let (name, primary, unique, partial, columns): (String, bool, bool, bool, Vec<String>) =
                (i.get(0), i.get(1), i.get(2), i.get(3), i.get(4));
            facts.insert(if primary {
                Fact::PrimaryKey(table.clone(), columns)
            } else if unique {
                Fact::Unique(table.clone(), columns, partial)
            } else {
                Fact::Index(name, table.clone(), columns, partial)
            });
        }
    }
    facts
}

#[tokio::test]
async fn the_sqlite_and_postgresql_trees_define_the_same_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("baton.db");
    let sqlite = SqliteStore::open(&path).await.unwrap();
    sqlite.migrate().await.unwrap();
    sqlite.close().await;
    let sqlite = sqlite_facts(&path).await;
    assert!(sqlite.iter().filter(|f| matches!(f, Fact::Table(_))).count() >= 20, "tables read: {sqlite:?}");
    assert!(!sqlite.iter().any(|f| matches!(f, Fact::Column(_, _, Kind::Other, _))), "a column of no portable kind");

    let Some(db) = PgTestDatabase::create().await else {
        eprintln!(
            "BATON_TEST_DATABASE_URL is not set: the SQLite tree was read, but there is no PostgreSQL to compare with"
        );
        return;
    };
    let postgres = PostgresStore::connect(&db.url, 2).await.unwrap();
    postgres.migrate().await.unwrap();
    postgres.close().await;
    let postgres = postgres_facts(&db.url).await;

    let only_sqlite: Vec<String> = sqlite.difference(&postgres).map(ToString::to_string).collect();
    let only_postgres: Vec<String> = postgres.difference(&sqlite).map(ToString::to_string).collect();
    assert!(
        only_sqlite.is_empty() && only_postgres.is_empty(),
        "the migration trees disagree.\n  only in migrations/sqlite:\n    {}\n  only in migrations/postgres:\n    {}",
        only_sqlite.join("\n    "),
        only_postgres.join("\n    ")
    );
    drop(db);
}

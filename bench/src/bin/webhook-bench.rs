//! `webhook-bench`: how fast a Baton node delivers webhooks to a local receiver.
//!
//! It starts, in this process, a receiver (an axum server on a loopback port answering
//! 200) and a Baton node exactly as `baton serve` starts one (worker on, so the webhook
//! delivery loop runs with its default 100 ms poll), on a fresh SQLite file or, with
//! `--backend postgres`, a fresh database on `BATON_TEST_DATABASE_URL`'s server. A tenant
//! gets one endpoint for every event. Events are then written to the outbox with the
//! same INSERT the engine uses, on a separate connection (as another node's API work
//! would), and the receiver records when each arrives:
//!
//! 1. **Throughput**: `--events` events written at once (in batches of 500); deliveries
//!    per second from the first arrival to the last.
//! 2. **Latency**: a steady `--rate` events per second (in 10 ms steps) for `--duration`
//!    seconds after `--warmup` seconds; latency is from the event's `createdAt` (written
//!    with the insert) to its arrival at the receiver, p50/p99/max.
//!
//! Events come in pairs with the same ordering key (an instruction's `processing` then
//! `settled`), so the second of each pair waits for the first to be delivered.

use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use axum::http::HeaderMap;
use baton::config::{Database, MasterKeySource, ServeConfig, StoreConfig, WebhookSettings};
use baton_domain::{Environment, TenantName};
use baton_engine::webhooks::EndpointInput;
use baton_engine::{KeyOwner, SystemClock, TenantInput};
use clap::{Parser, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, Parser)]
#[command(about = "Measures webhook delivery throughput and latency of one Baton node")]
struct Args {
    #[arg(long, value_enum, default_value_t = Backend::Sqlite)]
    backend: Backend,
    /// Events written at once for the throughput phase
    #[arg(long, default_value_t = 20_000)]
    events: usize,
    /// Events per second in the latency phase
    #[arg(long, default_value_t = 500)]
    rate: usize,
    /// Measured seconds of the latency phase
    #[arg(long, default_value_t = 20)]
    duration: u64,
    /// Unrecorded seconds before the latency phase
    #[arg(long, default_value_t = 3)]
    warmup: u64,
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Arrivals at the receiver: (event id, ms since the epoch).
#[derive(Default)]
struct Arrivals {
    seen: Mutex<Vec<(String, i64)>>,
    count: AtomicUsize,
}

async fn start_receiver(arrivals: Arc<Arrivals>) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap| {
            let arrivals = arrivals.clone();
            async move {
                let at = now_ms();
                let id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                arrivals.seen.lock().unwrap().push((id, at));
                arrivals.count.fetch_add(1, Ordering::SeqCst);
                "ok"
            }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(format!("http://{addr}/hook"))
}

/// Writes outbox events straight into the database, as the engine's unit of work does.
enum Writer {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

const DATA: &str = r#"{"order":{"orderRef":"ORDER-1001","metadata":{"policy":"P-778"}},"instruction":{"instructionRef":"premium-2026-01","direction":"DEBIT","status":"SETTLED","customerRef":"cust-42","financialInstrumentId":"0190f5e2-7a4c-7c1e-9a53-1b2c3d4e5f60","amount":"49.90","currency":"EUR","country":"DE","settledByDate":"2026-01-31","metadata":{"installment":"1"}},"scheme":{"schemeId":"0190f5e2-1111-7c1e-9a53-1b2c3d4e5f60","draftId":"0190f5e2-2222-7c1e-9a53-1b2c3d4e5f60","code":"PREM"},"transaction":{"transactionId":"0190f5e2-3333-7c1e-9a53-1b2c3d4e5f60","appId":"SANDBOX_CARD","status":"SETTLED","providerReference":"sbx_ch_0001"}}"#;

impl Writer {
    /// Inserts events `first..first + n` for the tenant, created now; pairs share a key.
    async fn insert(&self, account: &str, tenant: &str, first: usize, n: usize) -> anyhow::Result<()> {
        let mut sql = String::from(
            "INSERT INTO events (event_id, account_id, tenant_id, event_type, ordering_key, data, created_at) VALUES ",
        );
        let created = now_ms();
        for i in first..first + n {
            let kind = if i % 2 == 0 { "instruction.processing" } else { "instruction.settled" };
            if i > first {
                sql.push(',');
            }
            sql.push_str(&format!(
                "('ev-{i:09}', '{account}', '{tenant}', '{kind}', 'instr-{:09}', '{DATA}', {created})",
                i / 2
            ));
        }
        match self {
            Writer::Sqlite(p) => sqlx::query(&sql).execute(p).await.map(|_| ())?,
            Writer::Postgres(p) => sqlx::query(&sql).execute(p).await.map(|_| ())?,
        }
        Ok(())
    }
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn wait_for(arrivals: &Arrivals, n: usize, bound: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    while arrivals.count.load(Ordering::SeqCst) < n {
        if started.elapsed() > bound {
            anyhow::bail!("only {} of {n} deliveries arrived within {bound:?}", arrivals.count.load(Ordering::SeqCst));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let arrivals = Arc::new(Arrivals::default());
    let receiver = start_receiver(arrivals.clone()).await?;

    let data_dir = tempfile::tempdir()?;
    let pg = match args.backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(
            baton_store::testing::PgTestDatabase::create()
                .await
                .context("set BATON_TEST_DATABASE_URL to a PostgreSQL server for --backend postgres")?,
        ),
    };
    let database = match &pg {
        Some(db) => Database::Postgres { url: db.url.clone(), max_connections: 16 },
        None => Database::Sqlite { path: data_dir.path().join("baton.db") },
    };
    let (_, master_key) = baton_vault::MasterKey::generate();
    let config = ServeConfig {
        store: StoreConfig {
            data_dir: data_dir.path().to_path_buf(),
            database: database.clone(),
            master_key: MasterKeySource::Inline(master_key),
            environment: Environment::Sandbox,
        },
        listen: "127.0.0.1:0".parse()?,
        tls: None,
        trusted_proxies: Vec::new(),
        rate_limit_per_second: 0,
        rate_limit_burst: 0,
        token_ttl: Duration::from_secs(3600),
        body_limit: 1024 * 1024,
        shutdown_grace: Duration::from_secs(5),
        accept_raw_card_data: false,
        worker_interval: Some(Duration::from_secs(1)),
        connector_timeout: Duration::from_secs(30),
        webhooks: WebhookSettings::default(),
        public_url: None,
        delivery: Default::default(),
    };
    let node = baton::node::start(config, Arc::new(SystemClock)).await?;
    let engine = node.engine.clone();
    let account = node.initial_credentials.clone().context("a fresh database")?.account_id;
    let tenant = engine
        .create_tenant(
            &account,
            TenantInput {
                name: TenantName::parse(Some("Webhook bench")).map_err(|p| anyhow::anyhow!("{}", p.code))?,
                address: None,
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .tenant_id;
    let owner = KeyOwner::Tenant { account_id: account.clone(), tenant_id: tenant.clone() };
    let input = EndpointInput { url: Some(receiver), events: Some(vec!["*".into()]), ..Default::default() };
    engine.create_webhook(&owner, input).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let writer = match &database {
        Database::Sqlite { path } => Writer::Sqlite(
            sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(
                    sqlx::sqlite::SqliteConnectOptions::from_str("sqlite://")?
                        .filename(path)
                        .busy_timeout(Duration::from_secs(30)),
                )
                .await?,
        ),
        Database::Postgres { url, .. } => {
            Writer::Postgres(sqlx::postgres::PgPoolOptions::new().max_connections(2).connect(url).await?)
        }
    };
    println!("backend: {:?}; receiver on loopback; poll interval 100 ms", args.backend);

    // 1. Throughput.
    let started = Instant::now();
    let mut written = 0;
    while written < args.events {
        let n = (args.events - written).min(500);
        writer.insert(&account, &tenant, written, n).await?;
        written += n;
    }
    let wrote_in = started.elapsed();
    wait_for(&arrivals, args.events, Duration::from_secs(600)).await?;
    let (first, last) = {
        let seen = arrivals.seen.lock().unwrap();
        (seen.iter().map(|(_, t)| *t).min().unwrap_or(0), seen.iter().map(|(_, t)| *t).max().unwrap_or(0))
    };
    let span = ((last - first).max(1)) as f64 / 1000.0;
    println!(
        "throughput: {} deliveries in {:.2} s = {:.0} deliveries/s (events written in {:.2} s; first write to last \
         delivery {:.2} s)",
        args.events,
        span,
        args.events as f64 / span,
        wrote_in.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );

    // 2. Latency at a steady rate.
    arrivals.seen.lock().unwrap().clear();
    let base = written;
    let per_step = (args.rate / 100).max(1);
    let steps = (args.warmup + args.duration) * 100;
    let mut created = std::collections::HashMap::new();
    let mut ticks = tokio::time::interval(Duration::from_millis(10));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let measured_from = base + (args.warmup * 100) as usize * per_step;
    for step in 0..steps as usize {
        ticks.tick().await;
        let first = base + step * per_step;
        let at = now_ms();
        writer.insert(&account, &tenant, first, per_step).await?;
        for i in first..first + per_step {
            created.insert(format!("ev-{i:09}"), at);
        }
    }
    let total = base + steps as usize * per_step;
    wait_for(&arrivals, total, Duration::from_secs(600)).await?;
    let mut latencies: Vec<i64> = arrivals
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|(id, _)| id.trim_start_matches("ev-").parse::<usize>().is_ok_and(|n| n >= measured_from))
        .filter_map(|(id, at)| created.get(id).map(|c| at - c))
        .collect();
    latencies.sort_unstable();
    println!(
        "latency at {} events/s for {} s ({} events): p50 {} ms, p99 {} ms, max {} ms",
        per_step * 100,
        args.duration,
        latencies.len(),
        percentile(&latencies, 50.0),
        percentile(&latencies, 99.0),
        latencies.last().copied().unwrap_or(0)
    );
    node.shutdown().await?;
    Ok(())
}

//! Wiring: open the store, load the master key, build the engine, and run the
//! HTTP server with its background tasks until shutdown.

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use baton_connectors::Connectors;
use baton_engine::liveness::HEARTBEAT_EVERY;
use baton_engine::{Clock, Engine, EngineConfig, ExecutionConfig, InitialCredentials, StartupCheck};
use baton_http::{AppState, HttpSettings};
use baton_store::{PostgresStore, SqliteStore, Store};
use baton_vault::MasterKey;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{Database, MasterKeySource, ServeConfig, StoreConfig};

/// How often each node reloads revocations and signing keys from the database:
/// a deleted key's tokens stop working on every node within this period.
pub const IDENTITY_REFRESH: Duration = Duration::from_millis(250);
/// How often expired nonces and idempotency keys are purged.
const MAINTENANCE_EVERY: Duration = Duration::from_secs(60);
/// Name of the file that receives the first admin key.
pub const INITIAL_KEY_FILE: &str = "initial-account-key.json";

/// Opens the configured database and applies migrations.
pub async fn open_store(config: &StoreConfig) -> anyhow::Result<Arc<dyn Store>> {
    let store: Arc<dyn Store> = match &config.database {
        Database::Sqlite { path } => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            }
            Arc::new(
                SqliteStore::open(path).await.with_context(|| format!("opening SQLite database {}", path.display()))?,
            )
        }
        Database::Postgres { url, max_connections } => {
            Arc::new(PostgresStore::connect(url, *max_connections).await.context("connecting to PostgreSQL")?)
        }
    };
    store.migrate().await.context("applying migrations")?;
    Ok(store)
}

/// Reads the master key; in SQLite development mode, generates one for a database
/// that is not yet initialised (never for one that is: that would only hide a lost key).
pub fn load_master_key(config: &StoreConfig, database_initialized: bool) -> anyhow::Result<MasterKey> {
    match &config.master_key {
        MasterKeySource::Inline(text) => MasterKey::from_base64(text).context("BATON_MASTER_KEY"),
        MasterKeySource::File(path) => read_key_file(path),
        MasterKeySource::DevFile(path) if path.exists() => read_key_file(path),
        MasterKeySource::DevFile(path) if database_initialized => bail!(
            "the database is initialised but its master key file {} is missing; restore it (or set BATON_MASTER_KEY)",
            path.display()
        ),
        MasterKeySource::DevFile(path) => {
            let (key, text) = MasterKey::generate();
            write_private_file(path, format!("{text}\n").as_bytes())?;
            tracing::warn!(
                path = %path.display(),
                "generated a development master key; production deployments must supply their own (BATON_MASTER_KEY or BATON_MASTER_KEY_FILE)"
            );
            Ok(key)
        }
    }
}

fn read_key_file(path: &Path) -> anyhow::Result<MasterKey> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading master key file {}", path.display()))?;
    MasterKey::from_base64(&text).with_context(|| format!("master key file {}", path.display()))
}

/// Writes a file readable only by its owner (mode 0600).
pub fn write_private_file(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(contents)?;
    file.sync_all()?;
    Ok(())
}

/// Builds the engine over the configured store and master key (for maintenance
/// commands: the vault refuses raw card data).
pub async fn build_engine(
    config: &StoreConfig,
    token_ttl: Duration,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Arc<Engine>> {
    build_engine_with(config, token_ttl, false, clock).await
}

/// Builds the engine over the configured store and master key, with the vault's
/// `accept_raw_card_data` setting.
pub async fn build_engine_with(
    config: &StoreConfig,
    token_ttl: Duration,
    accept_raw_card_data: bool,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Arc<Engine>> {
    let settings = EngineSettings { token_ttl, accept_raw_card_data, ..EngineSettings::default() };
    build_engine_calling(config, settings, clock, Connectors::standard()).await
}

/// What a node's engine is built with besides its store.
struct EngineSettings {
    token_ttl: Duration,
    accept_raw_card_data: bool,
    execution: ExecutionConfig,
    webhooks: baton_engine::webhooks::WebhookConfig,
    public_url: String,
    delivery: baton_engine::pay_by_link::delivery::DeliveryConfig,
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            token_ttl: Duration::from_secs(3600),
            accept_raw_card_data: false,
            execution: ExecutionConfig::default(),
            webhooks: baton_engine::webhooks::WebhookConfig::default(),
            public_url: EngineConfig::default().public_url,
            delivery: Default::default(),
        }
    }
}

/// The base of customers' URLs when `public_url` is not set: the address listened on
/// (`localhost` for a wildcard address).
pub fn default_public_url(addr: SocketAddr, tls: bool) -> String {
    let scheme = if tls { "https" } else { "http" };
    let host = match addr.ip() {
        ip if ip.is_unspecified() => "localhost".to_string(),
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
        ip => ip.to_string(),
    };
    format!("{scheme}://{host}:{}", addr.port())
}

/// As [`build_engine_with`], calling PSPs through `connectors`.
async fn build_engine_calling(
    config: &StoreConfig,
    settings: EngineSettings,
    clock: Arc<dyn Clock>,
    connectors: Connectors,
) -> anyhow::Result<Arc<Engine>> {
    let store = open_store(config).await?;
    let initialized = store.master_key_check().await.context("reading the database's key check")?.is_some();
    let master_key = Arc::new(load_master_key(config, initialized)?);
    let engine_config = EngineConfig {
        environment: config.environment,
        token_ttl: settings.token_ttl,
        accept_raw_card_data: settings.accept_raw_card_data,
        execution: settings.execution,
        webhooks: settings.webhooks,
        public_url: settings.public_url,
        delivery: settings.delivery,
        ..EngineConfig::default()
    };
    Ok(Arc::new(Engine::new(store, master_key, engine_config, clock).with_connectors(connectors)))
}

/// Creates the account and its first admin key, and writes them to the data dir.
pub async fn initialize(engine: &Engine, data_dir: &Path) -> anyhow::Result<InitialCredentials> {
    let credentials = engine.initialize().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let json = serde_json::to_vec_pretty(&credentials)?;
    write_private_file(&data_dir.join(INITIAL_KEY_FILE), &json)?;
    Ok(credentials)
}

/// A running node; dropping it does not stop it, `shutdown` does.
pub struct RunningNode {
    pub addr: SocketAddr,
    pub engine: Arc<Engine>,
    /// Set when this start initialised an empty database.
    pub initial_credentials: Option<InitialCredentials>,
    pub tls: bool,
    stop: watch::Sender<bool>,
    server: JoinHandle<anyhow::Result<()>>,
}

impl RunningNode {
    /// Stops accepting, lets in-flight requests finish, closes the pool.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        self.server.await.context("server task")?
    }

    /// Runs until SIGINT or SIGTERM, then shuts down gracefully.
    pub async fn run_until(self, signals: ShutdownSignals) -> anyhow::Result<()> {
        signals.recv().await;
        tracing::info!("shutdown requested; finishing in-flight requests");
        self.shutdown().await
    }
}

/// SIGINT and SIGTERM handlers, registered before the server starts so that a
/// signal arriving at any moment after start-up shuts down cleanly.
pub struct ShutdownSignals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    pub fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self { interrupt: signal(SignalKind::interrupt())?, terminate: signal(SignalKind::terminate())? })
    }

    async fn recv(mut self) {
        tokio::select! { _ = self.interrupt.recv() => {}, _ = self.terminate.recv() => {} }
    }
}

/// Starts a node: migrations, first-start initialisation, background tasks, and the
/// HTTP(S) server on `config.listen` (port 0 picks a free port).
pub async fn start(config: ServeConfig, clock: Arc<dyn Clock>) -> anyhow::Result<RunningNode> {
    start_with(config, clock, Connectors::standard()).await
}

/// As [`start`], calling PSPs through `connectors` (tests put a scripted PSP there).
pub async fn start_with(
    config: ServeConfig,
    clock: Arc<dyn Clock>,
    connectors: Connectors,
) -> anyhow::Result<RunningNode> {
    validate(&config)?;
    // Bound first: the port (0 picks one) is part of the default public URL.
    let listener = std::net::TcpListener::bind(config.listen).with_context(|| format!("binding {}", config.listen))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let public_url = match &config.public_url {
        Some(url) => url.clone(),
        None => {
            let url = default_public_url(addr, config.tls.is_some());
            if addr.ip().is_unspecified() {
                tracing::warn!(public_url = %url, "public_url is not set; pay-by-links point at {url}: set public_url (BATON_PUBLIC_URL) to the address customers reach");
            }
            url
        }
    };
    let settings = EngineSettings {
        token_ttl: config.token_ttl,
        accept_raw_card_data: config.accept_raw_card_data,
        execution: ExecutionConfig { connector_timeout: config.connector_timeout, ..ExecutionConfig::default() },
        webhooks: baton_engine::webhooks::WebhookConfig {
            allow: baton_engine::webhooks::AllowList::parse(&config.webhooks.allowed_hosts)
                .map_err(anyhow::Error::msg)?,
            rotation_overlap: config.webhooks.rotation_overlap,
            ..Default::default()
        },
        public_url,
        delivery: config.delivery.clone(),
    };
    let engine = build_engine_calling(&config.store, settings, clock, connectors).await?;
    // Heard from before it claims anything: the claims of a node without a heartbeat are free.
    engine.heartbeat().await.map_err(|e| anyhow::anyhow!("{e}")).context("writing the node's first heartbeat")?;
    let initial_credentials = match engine.check_startup().await.map_err(|e| anyhow::anyhow!("{e}"))? {
        StartupCheck::Initialized => None,
        StartupCheck::Empty => Some(initialize(&engine, &config.store.data_dir).await?),
    };
    let state = AppState::new(
        engine.clone(),
        HttpSettings {
            body_limit: config.body_limit,
            rate_limit_per_second: config.rate_limit_per_second,
            rate_limit_burst: config.rate_limit_burst,
            trusted_proxies: config.trusted_proxies.clone(),
        },
    );
    let (stop, stopped) = watch::channel(false);
    spawn_heartbeat(engine.clone(), stopped.clone());
    spawn_background(state.clone(), stopped.clone());
    if let Some(interval) = config.worker_interval {
        spawn_worker(engine.clone(), interval, stopped.clone());
        // Webhooks have their own, shorter loop: sends overlap, and delivery latency is
        // bounded by the poll interval rather than the worker's.
        let mut stop = stopped.clone();
        let stop = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        tokio::spawn(engine.clone().run_webhook_deliveries(config.webhooks.poll_interval, stop));
    }

    let app = baton_http::router(state).into_make_service_with_connect_info::<SocketAddr>();
    let grace = config.shutdown_grace;
    let server_engine = engine.clone();
    let server = match &config.tls {
        None => {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            let mut stop_accepting = stopped.clone();
            let mut grace_timer = stopped;
            tokio::spawn(async move {
                let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                    let _ = stop_accepting.wait_for(|s| *s).await;
                });
                // Once shutdown begins, in-flight requests get `grace` to finish.
                let deadline = async move {
                    let _ = grace_timer.wait_for(|s| *s).await;
                    tokio::time::sleep(grace).await;
                };
                let outcome = tokio::select! {
                    r = serve.into_future() => r.map_err(anyhow::Error::from),
                    _ = deadline => {
                        tracing::warn!("grace period over; closing the remaining connections");
                        Ok(())
                    }
                };
                server_engine.close().await;
                outcome
            })
        }
        Some((cert, key)) => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                .await
                .with_context(|| format!("loading TLS certificate {} and key {}", cert.display(), key.display()))?;
            let handle = axum_server::Handle::new();
            let shutdown_handle = handle.clone();
            let mut stopped = stopped;
            tokio::spawn(async move {
                let _ = stopped.wait_for(|s| *s).await;
                shutdown_handle.graceful_shutdown(Some(grace));
            });
            tokio::spawn(async move {
                let result = axum_server::from_tcp_rustls(listener, tls).handle(handle).serve(app).await;
                server_engine.close().await;
                result.map_err(anyhow::Error::from)
            })
        }
    };
    Ok(RunningNode { addr, engine, initial_credentials, tls: config.tls.is_some(), stop, server })
}

/// Writes the node's heartbeat every [`HEARTBEAT_EVERY`] until shutdown. Its own task, so
/// that no other background work can delay it: while it beats, no other node takes over
/// what this one holds; once it stops (a crash), they do within seconds.
fn spawn_heartbeat(engine: Arc<Engine>, mut stopped: watch::Receiver<bool>) {
    tokio::spawn(async move {
        let mut beats = tokio::time::interval(HEARTBEAT_EVERY);
        beats.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stopped.changed() => break,
                _ = beats.tick() => {
                    if let Err(e) = engine.heartbeat().await {
                        tracing::warn!(error = format!("{e:#}"), "could not write the node's heartbeat");
                    }
                }
            }
        }
    });
}

fn spawn_background(state: AppState, mut stopped: watch::Receiver<bool>) {
    tokio::spawn(async move {
        let mut refresh = tokio::time::interval(IDENTITY_REFRESH);
        refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut maintenance = tokio::time::interval(MAINTENANCE_EVERY);
        loop {
            tokio::select! {
                _ = stopped.changed() => break,
                _ = refresh.tick() => {
                    if let Err(e) = state.engine.refresh_identity_caches().await {
                        tracing::warn!(error = format!("{e:#}"), "could not refresh identity caches");
                    }
                }
                _ = maintenance.tick() => {
                    match state.engine.purge_expired().await {
                        Ok(n) if n > 0 => tracing::debug!(rows = n, "purged expired nonces and idempotency keys"),
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = format!("{e:#}"), "maintenance failed"),
                    }
                    if let Some(limits) = &state.rate_limits {
                        limits.forget_idle();
                    }
                    state.checkout_limits.forget_idle();
                }
            }
        }
    });
}

/// Background work shared through the database (see `Engine::worker_tick`); every
/// node may run it, claims keep nodes from doing the same work twice.
fn spawn_worker(engine: Arc<Engine>, interval: Duration, mut stopped: watch::Receiver<bool>) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stopped.changed() => break,
                _ = ticks.tick() => {
                    match engine.worker_tick().await {
                        Ok(report) => tracing::debug!(?report, "worker round"),
                        Err(e) => tracing::warn!(error = format!("{e:#}"), "worker round failed"),
                    }
                }
            }
        }
    });
}

/// Refuses to start a node whose configuration cannot be served.
pub fn validate(config: &ServeConfig) -> anyhow::Result<()> {
    if config.body_limit < 1024 {
        bail!("the body limit must be at least 1024 bytes");
    }
    Ok(())
}

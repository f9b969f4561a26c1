//! The `baton` command line.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use baton_engine::{Engine, EngineConfig, StartupCheck, SystemClock};
use baton_vault::MasterKey;
use clap::{Args, Parser, Subcommand};

use crate::config::{Database, MasterKeySource, ServeArgs, StoreArgs};
use crate::node::{self, INITIAL_KEY_FILE};

#[derive(Debug, Parser)]
#[command(name = "baton", version, about = "Baton: a self-hostable payments orchestrator", propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per process: the size of the `serve` variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API (and its background work). Initialises an empty database.
    Serve {
        #[command(flatten)]
        args: ServeArgs,
        /// On an empty database, also create the demo tenant (see `init --demo`) and print its keys
        #[arg(long)]
        demo: bool,
    },
    /// Initialise an empty database and print the first account key.
    Init {
        #[command(flatten)]
        store: StoreArgs,
        /// Print exactly one JSON object {accountId, publicKey, privateKey} on stdout
        /// (with --demo: and `tenant: {tenantId, publicKey, privateKey, collectSchemeId,
        /// payoutSchemeId, rewardGroupId}`)
        #[arg(long)]
        json: bool,
        /// Also create a demo tenant: sandbox apps installed and configured, a published
        /// collect and payout scheme, a reward group and a tenant key with every tenant role
        #[arg(long)]
        demo: bool,
    },
    /// Apply database migrations and exit.
    Migrate {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Print an `Authorization: Hmac …` header value for a request (SPEC §2).
    Hmac {
        /// The API key's public key
        #[arg(long)]
        public_key: String,
        /// The API key's private key (base64)
        #[arg(long, env = "BATON_PRIVATE_KEY", hide_env_values = true)]
        private_key: String,
        /// File with the exact request body to sign (default: empty body)
        #[arg(long, value_name = "FILE")]
        body: Option<PathBuf>,
        /// Nonce to use (default: a random one)
        #[arg(long)]
        nonce: Option<String>,
        /// Epoch seconds to use (default: now)
        #[arg(long)]
        epoch: Option<String>,
    },
    /// Add a new access-token signing key; tokens signed with older keys stay valid until they expire.
    RotateTokenKey {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Customer vault key management.
    Vault {
        #[command(subcommand)]
        command: VaultCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum VaultCommand {
    /// Move everything under a new master key: re-wrap every customer data key (the data
    /// itself is not re-encrypted) and re-seal token signing keys, API private keys and app
    /// secrets. Stop every node first; afterwards start them with the new key only. The
    /// store is opened with the current master key (--master-key, BATON_MASTER_KEY, ...).
    /// If interrupted, run the same command again: it continues where it stopped.
    RotateMasterKey {
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        new_key: NewMasterKeyArgs,
        /// Customer data keys re-wrapped per batch
        #[arg(long, value_name = "N", default_value_t = 500)]
        batch_size: usize,
    },
}

/// Where the new master key of a rotation comes from.
#[derive(Clone, Args)]
pub struct NewMasterKeyArgs {
    /// File holding the new master key (base64 of 32 bytes)
    #[arg(long, value_name = "FILE", conflicts_with = "new_master_key")]
    pub new_master_key_file: Option<PathBuf>,
    /// The new master key (base64 of 32 bytes), instead of --new-master-key-file
    #[arg(long, env = "BATON_NEW_MASTER_KEY", value_name = "BASE64", hide_env_values = true)]
    pub new_master_key: Option<String>,
}

impl std::fmt::Debug for NewMasterKeyArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewMasterKeyArgs")
            .field("new_master_key_file", &self.new_master_key_file)
            .field("new_master_key", &self.new_master_key.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

impl NewMasterKeyArgs {
    fn load(&self) -> anyhow::Result<MasterKey> {
        match (&self.new_master_key_file, &self.new_master_key) {
            (Some(path), _) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading new master key file {}", path.display()))?;
                MasterKey::from_base64(&text).with_context(|| format!("new master key file {}", path.display()))
            }
            (None, Some(text)) if !text.trim().is_empty() => {
                MasterKey::from_base64(text).context("--new-master-key / BATON_NEW_MASTER_KEY")
            }
            _ => anyhow::bail!(
                "the new master key is required: --new-master-key-file FILE, --new-master-key BASE64 or BATON_NEW_MASTER_KEY"
            ),
        }
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { args, demo } => {
            let config = args.resolve()?;
            let data_dir = config.store.data_dir.clone();
            let (environment, database) = (config.store.environment, format!("{:?}", config.store.database));
            let signals = node::ShutdownSignals::install()?;
            let running = node::start(config, Arc::new(SystemClock)).await?;
            if let Some(credentials) = &running.initial_credentials {
                announce_initial_key(credentials, &data_dir);
                if demo {
                    let tenant = running
                        .engine
                        .create_demo_tenant(&credentials.account_id)
                        .await
                        .map_err(|e| anyhow::anyhow!("creating the demo tenant: {e}"))?;
                    save_demo_tenant(&tenant, &data_dir)?;
                    announce_demo_tenant(&tenant, &data_dir);
                }
            } else if demo {
                tracing::warn!("the database was already initialised; --demo creates demo data only on an empty one");
            }
            tracing::info!(addr = %running.addr, %environment, %database, tls = running.tls, "baton is listening");
            running.run_until(signals).await
        }
        Command::Init { store, json, demo } => {
            let config = store.resolve()?;
            let engine =
                node::build_engine(&config, std::time::Duration::from_secs(3600), Arc::new(SystemClock)).await?;
            if engine.check_startup().await.map_err(|e| anyhow::anyhow!("{e}"))? == StartupCheck::Initialized {
                anyhow::bail!("this database is already initialised; nothing was changed");
            }
            let credentials = node::initialize(&engine, &config.data_dir).await?;
            let tenant = if demo {
                let tenant = engine.create_demo_tenant(&credentials.account_id).await;
                let tenant = tenant.map_err(|e| anyhow::anyhow!("creating the demo tenant: {e}"))?;
                save_demo_tenant(&tenant, &config.data_dir)?;
                Some(tenant)
            } else {
                None
            };
            engine.close().await;
            match (json, tenant) {
                (true, None) => println!("{}", serde_json::to_string(&credentials)?),
                (true, Some(tenant)) => {
                    let demo = baton_engine::demo::DemoCredentials { account: credentials, tenant };
                    println!("{}", serde_json::to_string(&demo)?)
                }
                (false, tenant) => {
                    announce_initial_key(&credentials, &config.data_dir);
                    if let Some(tenant) = tenant {
                        announce_demo_tenant(&tenant, &config.data_dir);
                    }
                }
            }
            Ok(())
        }
        Command::Migrate { store } => {
            let config = store.resolve()?;
            let store = node::open_store(&config).await?;
            store.close().await;
            eprintln!("migrations applied ({:?})", config.database);
            Ok(())
        }
        Command::Hmac { public_key, private_key, body, nonce, epoch } => {
            let body = match body {
                Some(path) => std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?,
                None => Vec::new(),
            };
            let nonce = nonce.unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
            let epoch = epoch.unwrap_or_else(|| time::OffsetDateTime::now_utc().unix_timestamp().to_string());
            B64.decode(private_key.trim()).context("the private key is not base64")?;
            let header =
                baton_domain::hmac_signature::authorization_header(&public_key, &private_key, &nonce, &epoch, &body)?;
            println!("{header}");
            Ok(())
        }
        Command::RotateTokenKey { store } => {
            let config = store.resolve()?;
            let engine =
                node::build_engine(&config, std::time::Duration::from_secs(3600), Arc::new(SystemClock)).await?;
            engine.check_startup().await.map_err(|e| anyhow::anyhow!("{e}"))?;
            let kid = engine.rotate_signing_key().await.map_err(|e| anyhow::anyhow!("{e}"))?;
            engine.close().await;
            eprintln!("new token signing key {kid} is active; running nodes pick it up within a second");
            Ok(())
        }
        Command::Vault { command: VaultCommand::RotateMasterKey { store, new_key, batch_size } } => {
            rotate_master_key(&store, &new_key, batch_size).await
        }
    }
}

/// `baton vault rotate-master-key`.
async fn rotate_master_key(store: &StoreArgs, new_key: &NewMasterKeyArgs, batch_size: usize) -> anyhow::Result<()> {
    let config = store.resolve()?;
    let new = new_key.load()?;
    if let Database::Sqlite { path } = &config.database {
        // Opening would create an empty database, with nothing to rotate.
        if !path.exists() {
            anyhow::bail!("there is no database at {}", path.display());
        }
    }
    let store = node::open_store(&config).await?;
    if store.master_key_check().await.context("reading the database's key check")?.is_none() {
        anyhow::bail!("this database is not initialised; there is no master key to rotate");
    }
    // Never generates a key: the database is initialised.
    let current = node::load_master_key(&config, true)?;
    let (old_id, new_id) = (current.key_id(), new.key_id());
    if old_id == new_id {
        anyhow::bail!("the new master key is the current one (id {old_id}); nothing to rotate");
    }
    let engine_config = EngineConfig { environment: config.environment, ..EngineConfig::default() };
    let engine = Engine::new(store, Arc::new(current), engine_config, Arc::new(SystemClock));
    eprintln!(
        "rotating the master key {old_id} -> {new_id} ({batch_size} customer data keys per batch); \
         nodes still running with the old key cannot read what has moved: stop them first"
    );
    let result = engine
        .rotate_master_key_with(&new, batch_size, |r| {
            eprintln!("  {} customer data keys re-wrapped, {} to go", r.rewrapped, r.remaining);
            std::ops::ControlFlow::Continue(())
        })
        .await;
    engine.close().await;
    let report = result.map_err(|e| {
        anyhow::anyhow!(
            "{e:#}\nthe rotation stopped; once the cause is fixed, the same command continues where it stopped"
        )
    })?;
    if !report.complete {
        anyhow::bail!(
            "{} customer data keys were created under the old master key during the rotation (is a node still \
             running?); stop every node and run the same command again",
            report.remaining
        );
    }
    let restart = match &config.master_key {
        MasterKeySource::Inline(_) => "set BATON_MASTER_KEY (or --master-key) to the new key".to_string(),
        MasterKeySource::File(path) | MasterKeySource::DevFile(path) => {
            format!("replace the contents of {} with the new key", path.display())
        }
    };
    eprintln!(
        "master key rotated: {} customer data keys re-wrapped, {} sealed secrets re-sealed; \
         the database now expects master key {new_id}.\n\
         Restart every node with the new master key ({restart}): nodes refuse to start with the old key.",
        report.rewrapped, report.resealed
    );
    Ok(())
}

/// Where `--demo` keeps a copy of the demo tenant's key and ids (mode 0600), for scripts.
pub const DEMO_TENANT_FILE: &str = "demo-tenant.json";

fn save_demo_tenant(t: &baton_engine::demo::DemoTenant, data_dir: &std::path::Path) -> anyhow::Result<()> {
    node::write_private_file(&data_dir.join(DEMO_TENANT_FILE), &serde_json::to_vec_pretty(t)?)
}

/// Shows the demo tenant's key and ids once, on the terminal (never through the log).
fn announce_demo_tenant(t: &baton_engine::demo::DemoTenant, data_dir: &std::path::Path) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "================ Demo tenant ======================\n\
         Tenant id:          {}\nPublic key:         {}\nPrivate key:        {}\n\
         Collect scheme id:  {}\nPayout scheme id:   {}\nReward group id:    {}\n\n\
         Sandbox apps SANDBOX_CARD, SANDBOX_BANK and SANDBOX_REWARDS are installed; the key\n\
         holds every tenant role. A copy was written to {} (mode 0600).\n\
         ===================================================\n",
        t.tenant_id,
        t.public_key,
        t.private_key,
        t.collect_scheme_id,
        t.payout_scheme_id,
        t.reward_group_id,
        data_dir.join(DEMO_TENANT_FILE).display()
    );
}

/// Shows the first admin key once, on the terminal (never through the log).
fn announce_initial_key(c: &baton_engine::InitialCredentials, data_dir: &std::path::Path) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "\n================ Baton initialised ================\n\
         Account id:   {}\nPublic key:   {}\nPrivate key:  {}\n\n\
         STORE THIS PRIVATE KEY NOW: it is shown only this once.\n\
         A copy was written to {} (mode 0600); move it somewhere safe.\n\
         ===================================================\n",
        c.account_id,
        c.public_key,
        c.private_key,
        data_dir.join(INITIAL_KEY_FILE).display()
    );
}

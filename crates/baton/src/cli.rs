//! The `baton` command line.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use baton_engine::{StartupCheck, SystemClock};
use clap::{Parser, Subcommand};

use crate::config::{ServeArgs, StoreArgs};
use crate::node::{self, INITIAL_KEY_FILE};

#[derive(Debug, Parser)]
#[command(name = "baton", version, about = "Baton: a self-hostable payments orchestrator", propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API (and its background work). Initialises an empty database.
    Serve(ServeArgs),
    /// Initialise an empty database and print the first account key.
    Init {
        #[command(flatten)]
        store: StoreArgs,
        /// Print exactly one JSON object {accountId, publicKey, privateKey} on stdout
        #[arg(long)]
        json: bool,
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
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => {
            let config = args.resolve()?;
            let data_dir = config.store.data_dir.clone();
            let (environment, database) = (config.store.environment, format!("{:?}", config.store.database));
            let signals = node::ShutdownSignals::install()?;
            let running = node::start(config, Arc::new(SystemClock)).await?;
            if let Some(credentials) = &running.initial_credentials {
                announce_initial_key(credentials, &data_dir);
            }
            tracing::info!(addr = %running.addr, %environment, %database, tls = running.tls, "baton is listening");
            running.run_until(signals).await
        }
        Command::Init { store, json } => {
            let config = store.resolve()?;
            let engine =
                node::build_engine(&config, std::time::Duration::from_secs(3600), Arc::new(SystemClock)).await?;
            if engine.check_startup().await.map_err(|e| anyhow::anyhow!("{e}"))? == StartupCheck::Initialized {
                anyhow::bail!("this database is already initialised; nothing was changed");
            }
            let credentials = node::initialize(&engine, &config.data_dir).await?;
            engine.close().await;
            if json {
                println!("{}", serde_json::to_string(&credentials)?);
            } else {
                announce_initial_key(&credentials, &config.data_dir);
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
    }
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

//! `cemflow serve`: the lake over the PostgreSQL wire protocol (psql, psycopg2, BI tools).

use anyhow::Context;
use cemflow_lakehouse::Lake;
use cemflow_queries::serve::{PgCredentials, PgServer, ServeOptions};
use cemflow_queries::QuerySession;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

/// Arguments of `cemflow serve`.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Lake root (directory or URI).
    #[arg(long, env = "CEMFLOW_LAKE", value_name = "DIR")]
    pub lake: String,
    /// Address to listen on: HOST:PORT (e.g. 127.0.0.1:5433) or just a port (loopback).
    #[arg(long, value_name = "ADDR")]
    pub pg: String,
    /// User name clients log in as (SCRAM-SHA-256); requires --password-env.
    #[arg(long, value_name = "U", requires = "password_env")]
    pub user: Option<String>,
    /// Name of the environment variable holding the password (never the password itself).
    #[arg(long, value_name = "VAR", requires = "user")]
    pub password_env: Option<String>,
    /// Maximum concurrent connections (0 = no limit).
    #[arg(long, default_value_t = 64)]
    pub max_connections: usize,
}

/// Resolves `--pg`: `HOST:PORT`, `[v6]:PORT` or a bare port (127.0.0.1).
fn resolve(addr: &str) -> Result<SocketAddr, crate::InputError> {
    if let Ok(port) = addr.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    let bad = |why: String| crate::InputError(format!("--pg {addr}: {why}"));
    let addrs: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|e| bad(format!("{e} (expected HOST:PORT)")))?
        .collect();
    // A name resolving to several addresses: prefer a non-loopback one, so that the
    // credentials check below is never bypassed by a loopback alias.
    addrs
        .iter()
        .find(|a| !a.ip().is_loopback())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| bad("resolves to no address".into()))
}

/// Runs the command.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let addr = resolve(&args.pg)?;
    let auth = match (&args.user, &args.password_env) {
        (Some(user), Some(var)) => {
            let password = std::env::var(var).map_err(|_| {
                crate::InputError(format!(
                    "--password-env {var}: the environment variable is not set (or not UTF-8)"
                ))
            })?;
            Some(
                PgCredentials::new(user.clone(), password)
                    .map_err(|e| crate::InputError(format!("--password-env {var}: {e}")))?,
            )
        }
        _ => None,
    };
    let opts = ServeOptions {
        addr,
        auth,
        max_connections: args.max_connections,
    };
    // Refuse before touching the lake.
    opts.validate()
        .map_err(|e| crate::InputError(e.to_string()))?;
    let lake = Lake::open_existing(&args.lake).map_err(|e| crate::InputError(e.to_string()))?;
    let session = QuerySession::open_blocking(Arc::new(lake)).context("opening the lake")?;
    let auth_desc = match &opts.auth {
        Some(c) => format!("user {} (SCRAM-SHA-256)", c.user),
        None => "no authentication (loopback only)".to_string(),
    };
    session.block_on(async {
        let server = PgServer::bind(&session, opts).await?;
        let local = server.local_addr()?;
        eprintln!(
            "cemflow: serving {} over the PostgreSQL protocol on {local}, {auth_desc}; Ctrl-C stops",
            args.lake
        );
        server.run_until_ctrl_c().await
    })?;
    Ok(())
}

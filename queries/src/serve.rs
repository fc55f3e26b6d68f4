//! `cemflow serve`: the query session over the PostgreSQL wire protocol.
//!
//! Built on `datafusion-postgres` (query handling: simple and extended protocol, `SET`/`SHOW`,
//! transactions, cursors, `pg_catalog` for `psql`'s `\d`) and `pgwire` (protocol, startup).
//! Authentication is SCRAM-SHA-256 (what `psql`/libpq and psycopg2 use by default with a
//! PostgreSQL 14+ server): the password never crosses the wire, neither in cleartext nor as
//! a replayable hash. Without credentials the server only binds to loopback addresses.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use datafusion::prelude::SessionContext;
use datafusion_postgres::auth::AuthManager;
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::setup_pg_catalog;
use datafusion_postgres::pgwire;
use datafusion_postgres::DfSessionService;
use pgwire::api::auth::noop::NoopStartupHandler;
use pgwire::api::auth::sasl::scram::{gen_salted_password, random_nonce, ScramAuth};
use pgwire::api::auth::sasl::SASLAuthStartupHandler;
use pgwire::api::auth::{
    AuthSource, DefaultServerParameterProvider, LoginInfo, Password, StartupHandler,
};
use pgwire::api::cancel::{CancelHandler, DefaultCancelHandler};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::{ConnectionManager, PgWireServerHandlers};
use pgwire::error::PgWireResult;
use tokio::net::TcpListener;

use crate::error::{QueryError, Result};
use crate::QuerySession;

/// SCRAM iteration count told to clients (PostgreSQL's default).
const SCRAM_ITERATIONS: usize = 4096;

/// The one user the server accepts, with its password.
#[derive(Clone)]
pub struct PgCredentials {
    /// User name clients log in as.
    pub user: String,
    password: String,
}

impl PgCredentials {
    /// Credentials for `user` with `password` (non-empty; the CLI reads it from an
    /// environment variable, never from the command line).
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Result<PgCredentials> {
        let user = user.into();
        let password = password.into();
        if user.is_empty() {
            return Err(QueryError::Input("the user name is empty".into()));
        }
        if password.is_empty() {
            return Err(QueryError::Input("the password is empty".into()));
        }
        Ok(PgCredentials { user, password })
    }
}

impl fmt::Debug for PgCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgCredentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Options of [`PgServer::bind`].
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Address to listen on.
    pub addr: SocketAddr,
    /// Credentials; `None` serves without authentication (loopback addresses only).
    pub auth: Option<PgCredentials>,
    /// Maximum concurrent connections (0 = no limit).
    pub max_connections: usize,
}

impl ServeOptions {
    /// Checks the options: no credentials is allowed on loopback addresses only.
    pub fn validate(&self) -> Result<()> {
        if self.auth.is_none() && !self.addr.ip().is_loopback() {
            return Err(QueryError::Input(format!(
                "refusing to serve {} without authentication: give --user and --password-env \
                 (or listen on a loopback address such as 127.0.0.1)",
                self.addr
            )));
        }
        Ok(())
    }
}

/// The SCRAM secrets: the salted password of the configured user, and a decoy for any
/// other user name (so that an unknown user fails exactly like a wrong password).
#[derive(Debug)]
struct ScramSource {
    user: String,
    salt: Vec<u8>,
    salted: Vec<u8>,
    decoy: Vec<u8>,
}

impl ScramSource {
    fn new(creds: &PgCredentials) -> ScramSource {
        let salt = random_nonce().into_bytes();
        let salted = gen_salted_password(&creds.password, &salt, SCRAM_ITERATIONS);
        let decoy = gen_salted_password(&random_nonce(), &salt, SCRAM_ITERATIONS);
        ScramSource {
            user: creds.user.clone(),
            salt,
            salted,
            decoy,
        }
    }

    fn password_for(&self, user: Option<&str>) -> Password {
        let hash = if user == Some(self.user.as_str()) {
            &self.salted
        } else {
            &self.decoy
        };
        Password::new(Some(self.salt.clone()), hash.clone())
    }
}

// `AuthSource` is an `async_trait`; this is its desugared form (no async-trait dependency).
impl AuthSource for ScramSource {
    fn get_password<'a, 'b, 'c, 'at>(
        &'a self,
        login: &'b LoginInfo<'c>,
    ) -> Pin<Box<dyn Future<Output = PgWireResult<Password>> + Send + 'at>>
    where
        'a: 'at,
        'b: 'at,
        Self: 'at,
    {
        let password = self.password_for(login.user());
        Box::pin(async move { Ok(password) })
    }
}

/// Startup without authentication (loopback only).
struct OpenStartup {
    connections: Arc<ConnectionManager>,
}

impl NoopStartupHandler for OpenStartup {
    fn connection_manager(&self) -> Option<Arc<ConnectionManager>> {
        Some(self.connections.clone())
    }
}

/// What every connection shares: the DataFusion service and the connection registry.
struct Shared {
    service: Arc<DfSessionService>,
    connections: Arc<ConnectionManager>,
    cancel: Arc<DefaultCancelHandler>,
}

impl Shared {
    fn new(ctx: Arc<SessionContext>) -> Shared {
        let connections = Arc::new(ConnectionManager::new());
        Shared {
            service: Arc::new(DfSessionService::new(ctx)),
            cancel: Arc::new(DefaultCancelHandler::new(connections.clone())),
            connections,
        }
    }
}

/// Handlers without authentication.
struct OpenHandlers(Shared);

impl PgWireServerHandlers for OpenHandlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.0.service.clone()
    }
    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.0.service.clone()
    }
    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        Arc::new(OpenStartup {
            connections: self.0.connections.clone(),
        })
    }
    fn cancel_handler(&self) -> Arc<impl CancelHandler> {
        self.0.cancel.clone()
    }
}

/// Handlers with SCRAM-SHA-256 authentication.
struct ScramHandlers {
    shared: Shared,
    source: Arc<ScramSource>,
}

impl PgWireServerHandlers for ScramHandlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.shared.service.clone()
    }
    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.shared.service.clone()
    }
    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        // One handler per connection: it holds that connection's SASL state.
        let mut scram = ScramAuth::new(self.source.clone());
        scram.set_iterations(SCRAM_ITERATIONS);
        Arc::new(
            SASLAuthStartupHandler::new(Arc::new(DefaultServerParameterProvider::default()))
                .with_scram(scram)
                .with_connection_manager(self.shared.connections.clone()),
        )
    }
    fn cancel_handler(&self) -> Arc<impl CancelHandler> {
        self.shared.cancel.clone()
    }
}

/// A bound PostgreSQL-wire server; [`PgServer::run`] accepts connections.
pub struct PgServer {
    listener: TcpListener,
    ctx: Arc<SessionContext>,
    opts: ServeOptions,
}

impl fmt::Debug for PgServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgServer")
            .field("addr", &self.listener.local_addr().ok())
            .field("opts", &self.opts)
            .finish()
    }
}

impl PgServer {
    /// Validates `opts`, installs `pg_catalog` (for `psql`'s `\d` and BI tools) into the
    /// session's context and binds the listening socket.
    pub async fn bind(session: &QuerySession, opts: ServeOptions) -> Result<PgServer> {
        opts.validate()?;
        let ctx = Arc::new(session.context().clone());
        setup_pg_catalog(&ctx, "datafusion", Arc::new(AuthManager::default()))
            .map_err(|e| QueryError::DataFusion(*e))?;
        let listener = TcpListener::bind(opts.addr)
            .await
            .map_err(|source| QueryError::Io {
                context: format!("listening on {}", opts.addr),
                source,
            })?;
        Ok(PgServer {
            listener,
            ctx,
            opts,
        })
    }

    /// The address the server listens on (the real port when bound to port 0).
    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.listener.local_addr().map_err(|source| QueryError::Io {
            context: "reading the listening address".into(),
            source,
        })
    }

    /// Accepts connections until the future is dropped.
    pub async fn run(self) -> Result<()> {
        let shared = Shared::new(self.ctx);
        let limit = self.opts.max_connections;
        match &self.opts.auth {
            Some(creds) => {
                let source = Arc::new(ScramSource::new(creds));
                accept_loop(
                    self.listener,
                    Arc::new(ScramHandlers { shared, source }),
                    limit,
                )
                .await
            }
            None => accept_loop(self.listener, Arc::new(OpenHandlers(shared)), limit).await,
        }
    }
}

async fn accept_loop<H>(listener: TcpListener, handlers: Arc<H>, limit: usize) -> Result<()>
where
    H: PgWireServerHandlers + Send + Sync,
{
    let limiter = (limit > 0).then(|| Arc::new(tokio::sync::Semaphore::new(limit)));
    loop {
        let (socket, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!("accepting a connection: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let permit = match &limiter {
            Some(sem) => match sem.clone().try_acquire_owned() {
                Ok(p) => Some(p),
                Err(_) => {
                    tracing::warn!("rejecting {peer}: {limit} connections already open");
                    continue;
                }
            },
            None => None,
        };
        let handlers = handlers.clone();
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(e) = pgwire::tokio::process_socket(socket, None, handlers).await {
                tracing::debug!("connection from {peer}: {e}");
            }
        });
    }
}

impl PgServer {
    /// [`PgServer::run`] until Ctrl-C (SIGINT).
    pub async fn run_until_ctrl_c(self) -> Result<()> {
        tokio::select! {
            r = self.run() => r,
            r = tokio::signal::ctrl_c() => r.map_err(|source| QueryError::Io {
                context: "waiting for Ctrl-C".into(),
                source,
            }),
        }
    }
}

/// Binds and serves `session` until Ctrl-C (see [`PgServer`]).
pub async fn serve(session: &QuerySession, opts: ServeOptions) -> Result<()> {
    PgServer::bind(session, opts)
        .await?
        .run_until_ctrl_c()
        .await
}

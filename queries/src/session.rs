//! [`QuerySession`]: a DataFusion [`SessionContext`] over the lake.
//!
//! Every existing Delta table of the lake is registered under its table name through
//! deltalake's `TableProvider` (so `date`/`hour` partition filters prune files and other
//! predicates are pushed into the Parquet scan: row-group statistics, bloom filters on
//! `user_key`), the cemflow UDFs are registered ([`crate::udf`]), and views answer the
//! common questions (see [`VIEWS`]).
//!
//! Tables are registered at the snapshot current when the session is opened (or last
//! [refreshed](QuerySession::refresh)): a statement never sees a half-written commit.

use crate::error::{QueryError, Result};
use cemflow_lakehouse::deltalake::DeltaTableError;
use cemflow_lakehouse::{Lake, LakeError, Table};
use datafusion::arrow::array::RecordBatch;
use datafusion::prelude::{SessionConfig, SessionContext};
use std::future::Future;
use std::sync::Arc;

/// Views created over the registered tables: `(name, needed tables (comma-separated),
/// SQL)`.
///
/// * `user_overall`: the users' overall rows (`user_minute` where `category = 'all'`).
/// * `poor_minutes`: overall rows of poor minutes measured by the probe.
/// * `user_category`: per-category rows (everything but `all`).
/// * `access_minute`, `core_minute`, `server_minute`: `element_minute` by level.
/// * `anomalous`: anomaly rows over the threshold.
/// * `latest_window`: the start of the newest window in `user_minute`.
/// * `element_kpi`: element KPI samples (`telemetry`) with the minute they fall in and that
///   element's `element_minute` row of that minute (users, poor share, CEI, RTTs; null
///   when the probe saw no user behind it then).
pub const VIEWS: &[(&str, &str, &str)] = &[
    (
        "user_overall",
        "user_minute",
        "SELECT * FROM user_minute WHERE category = 'all'",
    ),
    (
        "poor_minutes",
        "user_minute",
        "SELECT * FROM user_minute WHERE category = 'all' AND poor AND source = 'probe'",
    ),
    (
        "user_category",
        "user_minute",
        "SELECT * FROM user_minute WHERE category <> 'all'",
    ),
    (
        "access_minute",
        "element_minute",
        "SELECT * FROM element_minute WHERE level = 'access'",
    ),
    (
        "core_minute",
        "element_minute",
        "SELECT * FROM element_minute WHERE level = 'core'",
    ),
    (
        "server_minute",
        "element_minute",
        "SELECT * FROM element_minute WHERE level = 'server'",
    ),
    (
        "anomalous",
        "anomalies",
        "SELECT * FROM anomalies WHERE anomalous",
    ),
    (
        "latest_window",
        "user_minute",
        "SELECT max(window_start) AS window_start FROM user_minute",
    ),
    (
        "element_kpi",
        "telemetry,element_minute",
        "SELECT t.ts, date_trunc('minute', t.ts) AS window_start, t.element_id, t.metric, \
         t.value, e.level, e.users, e.poor_users, e.poor_share, e.cei_mean, e.cei_p10, \
         e.rtt_client_ms_median, e.rtt_server_ms_median, e.retrans_rate, t.date \
         FROM telemetry t LEFT JOIN element_minute e ON e.element_id = t.element_id \
         AND e.level IN ('access', 'core') AND e.date = t.date \
         AND e.window_start = date_trunc('minute', t.ts)",
    ),
];

/// A DataFusion session over one lake.
pub struct QuerySession {
    lake: Arc<Lake>,
    ctx: SessionContext,
    tables: std::sync::Mutex<Vec<Table>>,
}

impl std::fmt::Debug for QuerySession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuerySession")
            .field("lake", &self.lake.root())
            .finish()
    }
}

/// True when the lake error says the table does not exist.
fn is_missing(e: &LakeError) -> bool {
    let Some(src) = std::error::Error::source(e) else {
        return false;
    };
    let delta = src
        .downcast_ref::<DeltaTableError>()
        .or_else(|| src.downcast_ref::<Box<DeltaTableError>>().map(|b| &**b));
    matches!(delta, Some(DeltaTableError::NotATable(_)))
}

impl QuerySession {
    /// Opens a session over `lake`: registers every existing table, the UDFs and the views.
    pub async fn open(lake: Arc<Lake>) -> Result<QuerySession> {
        let config = SessionConfig::new()
            .with_information_schema(true)
            .with_target_partitions(
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(2),
            );
        let ctx = SessionContext::new_with_config(config);
        crate::udf::register_all(&ctx);
        let s = QuerySession {
            lake,
            ctx,
            tables: std::sync::Mutex::new(Vec::new()),
        };
        s.refresh().await?;
        Ok(s)
    }

    /// Blocking [`QuerySession::open`], on the lake's runtime.
    pub fn open_blocking(lake: Arc<Lake>) -> Result<QuerySession> {
        let l = lake.clone();
        l.block_on(QuerySession::open(lake))
    }

    /// Runs `fut` to completion on the lake's runtime (for synchronous callers).
    pub fn block_on<F>(&self, fut: F) -> F::Output
    where
        F: Future + Send,
        F::Output: Send,
    {
        self.lake.block_on(fut)
    }

    /// (Re-)registers every existing table at its latest version, and the views.
    pub async fn refresh(&self) -> Result<()> {
        let mut found = Vec::new();
        for t in Table::ALL {
            let dt = match self.lake.table_async(t).await {
                Ok(dt) => dt,
                Err(e) if is_missing(&e) => continue,
                Err(e) => return Err(e.into()),
            };
            dt.update_datafusion_session(&self.ctx.state())
                .map_err(|e| {
                    QueryError::DataFusion(datafusion::error::DataFusionError::External(Box::new(
                        e,
                    )))
                })?;
            let provider = dt.table_provider().await?;
            self.ctx.deregister_table(t.name())?;
            self.ctx.register_table(t.name(), provider)?;
            found.push(t);
        }
        for (view, needs, sql) in VIEWS {
            self.ctx.deregister_table(*view)?;
            if needs
                .split(',')
                .all(|n| found.iter().any(|t| t.name() == n))
            {
                let df = self.ctx.sql(sql).await?;
                self.ctx.register_table(*view, df.into_view())?;
            }
        }
        if let Ok(mut t) = self.tables.lock() {
            *t = found;
        }
        Ok(())
    }

    /// The DataFusion context (tables, views and UDFs registered).
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// The lake.
    pub fn lake(&self) -> &Arc<Lake> {
        &self.lake
    }

    /// The lake tables registered in this session.
    pub fn tables(&self) -> Vec<Table> {
        self.tables.lock().map(|t| t.clone()).unwrap_or_default()
    }

    /// True when `table` is registered (exists in the lake).
    pub fn has_table(&self, table: Table) -> bool {
        self.tables().contains(&table)
    }

    /// Fails with [`QueryError::MissingTable`] unless `table` is registered.
    pub fn require(&self, table: Table) -> Result<()> {
        if self.has_table(table) {
            Ok(())
        } else {
            Err(QueryError::MissingTable(table.name().to_string()))
        }
    }

    /// Plans and runs one SQL statement, collecting the result.
    pub async fn sql(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        let df = self.ctx.sql(sql).await?;
        Ok(df.collect().await?)
    }
}

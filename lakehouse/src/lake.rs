//! [`Lake`]: the lake root, its Delta tables, and exactly-once window commits.
//!
//! # Runtime
//! deltalake is async. [`Lake`] is a **blocking facade**: it owns a small multi-threaded
//! tokio runtime and every public method blocks the calling thread until done, so the sync
//! CLI and the dataflow's writer thread call it directly. CPU work of a write (Parquet
//! encoding) runs on the calling thread. Called from *inside* a tokio runtime (the
//! queries crate's pg-wire server), a blocking method runs its future on the lake's own
//! runtime from a scoped helper thread, so it never panics with "cannot block within a
//! runtime"; async code should prefer the `*_async` methods ([`Lake::table_async`]).
//!
//! # Exactly-once commits
//! [`Lake::commit_windows`] writes the rows of one or several closed windows. Delta commits
//! are per table, so the protocol is per table, in the fixed order of [`Table::WINDOWED`]:
//! 1. refresh the table and read the committed app-transaction version `v` of
//!    `app_id = cemflow/<source-id>` (None when the source never committed);
//! 2. keep only the windows with start `> v` (windows `≤ v` are already in the table:
//!    skipped, counted in [`TableCommit::skipped_rows`]);
//! 3. write their rows as new Parquet files (invisible: no log entry references them yet),
//!    then commit **one** Delta version with the `add` actions *and* a `txn` action
//!    `(app_id, version = start of the last kept window)`. The commit is atomic: either the
//!    rows and the new txn version are visible together, or neither is.
//!
//! Every windowed table gets a commit on every call, even without rows (a txn-only
//! commit), so each table's txn version says "this source's windows up to here are in".
//! A crash between two tables' commits leaves the later tables one batch behind; the
//! restarted ingest replays its input, the already committed tables skip the replayed
//! windows and the others write them: the lake heals to exactly one copy of every row.
//! Readers wanting a cross-table consistent cut use [`Lake::watermark`] (the minimum txn
//! version over the windowed tables) and filter `window_start <= watermark`.
//! Files written by a crashed writer are never referenced; `vacuum` (full mode) deletes
//! them. A concurrent writer using the same source id makes the later commit fail with
//! a concurrent-transaction conflict instead of duplicating rows.
//!
//! Window starts must increase per source id (closed windows are committed in order).
//!
//! # Backpressure
//! The lake holds nothing between calls: a call returns once its rows are durable, so a
//! writer that commits every closed window (or every N) bounds its memory to those N
//! windows.

use crate::batches::{check_schema, TableBatches};
use crate::error::LakeError;
use crate::schema::{Table, SCHEMA_VERSION, SCHEMA_VERSION_KEY, TABLE_NAME_KEY};
use arrow::array::RecordBatch;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::kernel::{Action, StructType, Transaction};
use deltalake::parquet::basic::{Compression, ZstdLevel};
use deltalake::parquet::file::properties::{EnabledStatistics, WriterProperties};
use deltalake::parquet::schema::types::ColumnPath;
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError};
use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;

/// Options of a [`Lake`].
#[derive(Clone, Debug)]
pub struct LakeOptions {
    /// Create the root and missing tables (true for [`Lake::open`]).
    pub create: bool,
    /// Object store options passed to deltalake (credentials, endpoint, region for
    /// object-store roots); empty for local paths.
    pub storage_options: HashMap<String, String>,
    /// zstd level of the Parquet files (1–22).
    pub zstd_level: i32,
    /// Maximum rows per Parquet row group: large row groups for scans (≈ 20–60 MB
    /// compressed for `user_minute`).
    pub row_group_rows: usize,
    /// Target data file size for writes and `optimize`, bytes.
    pub target_file_size: u64,
    /// Test hook: make window commits fail (as a crash would) after this many tables
    /// were committed. Not for production use.
    #[doc(hidden)]
    pub fail_after_tables: Option<usize>,
}

impl Default for LakeOptions {
    fn default() -> Self {
        LakeOptions {
            create: true,
            storage_options: HashMap::new(),
            zstd_level: 3,
            row_group_rows: 1 << 20,
            target_file_size: 128 * 1024 * 1024,
            fail_after_tables: None,
        }
    }
}

impl LakeOptions {
    /// The Parquet writer properties of `table`'s data files: zstd at
    /// [`LakeOptions::zstd_level`], row groups of at most [`LakeOptions::row_group_rows`],
    /// dictionary encoding, page statistics, and a bloom filter on `user_key` where the
    /// table has it. [`LakeError::Option`] for an invalid zstd level.
    pub fn writer_properties(&self, table: Table) -> Result<WriterProperties, LakeError> {
        let level = ZstdLevel::try_new(self.zstd_level).map_err(|e| LakeError::Option {
            option: "zstd_level",
            reason: format!("{}: {e}", self.zstd_level),
        })?;
        let mut b = WriterProperties::builder()
            .set_compression(Compression::ZSTD(level))
            .set_max_row_group_row_count(Some(self.row_group_rows.max(1)))
            .set_dictionary_enabled(true)
            .set_statistics_enabled(EnabledStatistics::Page);
        if table.schema().index_of("user_key").is_ok() {
            // Point lookups by user (demarcation, poor-user drill-down) prune row groups.
            b = b.set_column_bloom_filter_enabled(ColumnPath::from("user_key"), true);
        }
        Ok(b.build())
    }
}

/// What one table got from a window commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableCommit {
    /// The table.
    pub table: Table,
    /// Rows written.
    pub rows: usize,
    /// Rows skipped because their window was already committed by this source.
    pub skipped_rows: usize,
    /// Delta version created, `None` when every window was already committed (nothing
    /// written, no commit).
    pub delta_version: Option<i64>,
    /// App transaction version after the call (start of the last committed window).
    pub txn_version: Option<i64>,
}

/// What a window commit did, per windowed table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommitReport {
    /// One entry per windowed table, in commit order.
    pub tables: Vec<TableCommit>,
}

impl CommitReport {
    /// Rows written over all tables.
    pub fn rows(&self) -> usize {
        self.tables.iter().map(|t| t.rows).sum()
    }
    /// Rows skipped (already committed) over all tables.
    pub fn skipped_rows(&self) -> usize {
        self.tables.iter().map(|t| t.skipped_rows).sum()
    }
    /// True when every table already had every window (a pure replay).
    pub fn all_skipped(&self) -> bool {
        self.tables.iter().all(|t| t.delta_version.is_none())
    }
}

/// The Delta app id of a source: `cemflow/<source-id>`.
pub fn app_id(source_id: &str) -> Result<String, LakeError> {
    if source_id.is_empty()
        || source_id.len() > 512
        || source_id
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(LakeError::SourceId(source_id.to_string()));
    }
    Ok(format!("cemflow/{source_id}"))
}

/// How the root was given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RootKind {
    /// A local directory (absolute, canonical).
    Local(std::path::PathBuf),
    /// An object-store URI (scheme known to deltalake).
    Url,
}

/// Registers deltalake's object stores for the URI schemes this build supports
/// (`s3://`, `s3a://`: S3 and S3-compatible stores), once per process. deltalake also
/// registers them from a static constructor; doing it here keeps the lake working when a
/// linker drops that constructor.
fn register_object_stores() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| deltalake::aws::register_handlers(None));
}

/// Classifies a lake root: a local path or `file://` URI, or an object-store URI
/// (`s3://bucket/prefix`). A scheme deltalake has no store registered for in this build
/// (`gs://`, `az://`, …) is an [`LakeError::UnsupportedScheme`].
pub(crate) fn classify_root(root: &str) -> Result<(RootKind, String), LakeError> {
    register_object_stores();
    let trimmed = root.trim();
    if trimmed.is_empty() {
        return Err(LakeError::Root {
            root: root.into(),
            reason: "empty path".into(),
        });
    }
    if let Some((scheme, rest)) = trimmed.split_once("://") {
        let scheme_ok = !scheme.is_empty()
            && scheme.len() > 1
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if scheme_ok {
            let scheme = scheme.to_ascii_lowercase();
            if scheme == "file" {
                return Ok((RootKind::Local(rest.into()), rest.to_string()));
            }
            if rest.trim_matches('/').is_empty() {
                return Err(LakeError::Root {
                    root: root.into(),
                    reason: "URI without a bucket/path".into(),
                });
            }
            // Ask deltalake whether a store is registered for the scheme.
            return match deltalake::ensure_table_uri(trimmed) {
                Ok(url) => Ok((
                    RootKind::Url,
                    url.as_str().trim_end_matches('/').to_string(),
                )),
                Err(DeltaTableError::InvalidTableLocation(msg))
                    if msg.contains("Unknown scheme") =>
                {
                    Err(LakeError::UnsupportedScheme {
                        root: root.into(),
                        scheme,
                    })
                }
                Err(e) => Err(LakeError::Root {
                    root: root.into(),
                    reason: e.to_string(),
                }),
            };
        }
    }
    Ok((RootKind::Local(trimmed.into()), trimmed.to_string()))
}

/// A cemflow lake: one Delta table per [`Table`] under one root (`<root>/<table>`).
pub struct Lake {
    inner: Arc<Inner>,
    /// Always `Some` until drop.
    rt: Option<tokio::runtime::Runtime>,
}

impl Drop for Lake {
    fn drop(&mut self) {
        // Every call has completed before returning, so nothing is in flight; shutting
        // down in the background also works when the lake is dropped inside another
        // runtime.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

pub(crate) struct Inner {
    /// Root as given.
    pub(crate) root: String,
    /// Root URI without trailing slash (`file:///abs/dir` or `scheme://bucket/path`).
    pub(crate) base: String,
    pub(crate) local: Option<std::path::PathBuf>,
    pub(crate) opts: LakeOptions,
    /// Loaded tables, refreshed incrementally.
    cache: tokio::sync::Mutex<HashMap<Table, DeltaTable>>,
}

impl std::fmt::Debug for Lake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lake")
            .field("root", &self.inner.root)
            .finish()
    }
}

impl Lake {
    /// Opens the lake at `root` (a directory path, `file://` URI or object-store URI),
    /// creating the directory and every missing table (with schema and schema version).
    pub fn open(root: &str) -> Result<Lake, LakeError> {
        Lake::open_with(root, LakeOptions::default())
    }

    /// Opens an existing lake without creating anything: [`LakeError::NotALake`] when no
    /// cemflow table exists at `root`. Missing tables of an existing lake are reported by
    /// [`Lake::table_exists`] and [`Lake::info`] (for readers: `sql`, `poor-users`).
    pub fn open_existing(root: &str) -> Result<Lake, LakeError> {
        Lake::open_with(
            root,
            LakeOptions {
                create: false,
                ..LakeOptions::default()
            },
        )
    }

    /// Opens the lake with explicit options.
    pub fn open_with(root: &str, opts: LakeOptions) -> Result<Lake, LakeError> {
        let (kind, path) = classify_root(root)?;
        let (base, local) = match kind {
            RootKind::Local(p) => {
                let p = if p.as_os_str().is_empty() {
                    std::path::PathBuf::from(&path)
                } else {
                    p
                };
                if opts.create {
                    std::fs::create_dir_all(&p).map_err(|e| LakeError::Root {
                        root: root.into(),
                        reason: format!("cannot create directory: {e}"),
                    })?;
                } else if !p.is_dir() {
                    return Err(LakeError::NotALake { root: root.into() });
                }
                let canon = std::fs::canonicalize(&p).map_err(|e| LakeError::Root {
                    root: root.into(),
                    reason: e.to_string(),
                })?;
                let url = deltalake::ensure_table_uri(canon.to_string_lossy()).map_err(|e| {
                    LakeError::Root {
                        root: root.into(),
                        reason: e.to_string(),
                    }
                })?;
                (
                    url.as_str().trim_end_matches('/').to_string(),
                    Some(canon.clone()),
                )
            }
            RootKind::Url => (path, None),
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(
                std::thread::available_parallelism()
                    .map(|n| n.get().min(4))
                    .unwrap_or(2),
            )
            .thread_name("cemflow-lake")
            .enable_all()
            .build()
            .map_err(|e| LakeError::Runtime(e.to_string()))?;
        let lake = Lake {
            inner: Arc::new(Inner {
                root: root.to_string(),
                base,
                local,
                opts,
                cache: tokio::sync::Mutex::new(HashMap::new()),
            }),
            rt: Some(rt),
        };
        let inner = lake.inner.clone();
        lake.block_on(async move { inner.init().await })?;
        Ok(lake)
    }

    /// Runs `fut` to completion on the lake's runtime (see the module docs).
    pub fn block_on<F>(&self, fut: F) -> F::Output
    where
        F: Future + Send,
        F::Output: Send,
    {
        let Some(rt) = self.rt.as_ref() else {
            unreachable!("the runtime lives until drop")
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            std::thread::scope(|s| {
                let h = s.spawn(|| rt.block_on(fut));
                match h.join() {
                    Ok(v) => v,
                    Err(p) => std::panic::resume_unwind(p),
                }
            })
        } else {
            rt.block_on(fut)
        }
    }

    /// The root as given to `open`.
    pub fn root(&self) -> &str {
        &self.inner.root
    }

    /// The URI of `table` (`file:///…/lake/user_minute`, `s3://bucket/lake/flows`).
    pub fn table_uri(&self, table: Table) -> String {
        self.inner.table_uri(table)
    }

    /// Object-store options used for the tables.
    pub fn storage_options(&self) -> &HashMap<String, String> {
        &self.inner.opts.storage_options
    }

    /// True when `table` exists (has a Delta log).
    pub fn table_exists(&self, table: Table) -> Result<bool, LakeError> {
        let inner = self.inner.clone();
        self.block_on(async move { inner.load(table, false).await.map(|t| t.is_some()) })
    }

    /// The latest snapshot of `table` as a [`DeltaTable`] (for DataFusion registration:
    /// `table.table_provider()`), or [`LakeError::Delta`] if it does not exist.
    pub fn table(&self, table: Table) -> Result<DeltaTable, LakeError> {
        let inner = self.inner.clone();
        self.block_on(async move { inner.require(table).await })
    }

    /// Async variant of [`Lake::table`], for callers already on a tokio runtime.
    pub async fn table_async(&self, table: Table) -> Result<DeltaTable, LakeError> {
        self.inner.require(table).await
    }

    /// Commits the rows of one or several closed windows whose last window starts at
    /// `window_start_s`, exactly once per `source_id` (see the module docs): tables whose
    /// committed txn version is `≥ window_start_s` skip the whole batch.
    pub fn commit_window(
        &self,
        source_id: &str,
        window_start_s: i64,
        batches: TableBatches,
    ) -> Result<CommitReport, LakeError> {
        self.commit_windows(source_id, vec![(window_start_s, batches)])
    }

    /// Commits several closed windows `(window_start_s, rows)` in one Delta commit per
    /// table, skipping per table exactly the windows already committed by `source_id`.
    /// Windows are sorted by start; the txn version becomes the last kept start.
    pub fn commit_windows(
        &self,
        source_id: &str,
        windows: Vec<(i64, TableBatches)>,
    ) -> Result<CommitReport, LakeError> {
        let app = app_id(source_id)?;
        let inner = self.inner.clone();
        let source = source_id.to_string();
        self.block_on(async move { inner.commit_windows(&app, &source, windows).await })
    }

    /// The last window start committed by `source_id` to `table` (its txn version).
    pub fn committed_window(
        &self,
        table: Table,
        source_id: &str,
    ) -> Result<Option<i64>, LakeError> {
        let app = app_id(source_id)?;
        let inner = self.inner.clone();
        self.block_on(async move { inner.txn_version(table, &app).await })
    }

    /// The last window start committed by `source_id` to *every* windowed table: rows
    /// with `window_start <= watermark` are complete across tables.
    pub fn watermark(&self, source_id: &str) -> Result<Option<i64>, LakeError> {
        let app = app_id(source_id)?;
        let inner = self.inner.clone();
        self.block_on(async move {
            let mut min: Option<i64> = None;
            for t in Table::WINDOWED {
                match inner.txn_version(t, &app).await? {
                    None => return Ok(None),
                    Some(v) => min = Some(min.map_or(v, |m: i64| m.min(v))),
                }
            }
            Ok(min)
        })
    }

    /// Appends batches to `table` in one commit without an app transaction (e.g.
    /// `demarcations`). Returns the new Delta version (`None` when there was no row).
    pub fn append(
        &self,
        table: Table,
        batches: Vec<RecordBatch>,
    ) -> Result<Option<i64>, LakeError> {
        for b in &batches {
            check_schema(table, b)?;
        }
        let inner = self.inner.clone();
        self.block_on(async move {
            if batches.iter().all(|b| b.num_rows() == 0) {
                return Ok(None);
            }
            inner.write_commit(table, batches, None).await.map(Some)
        })
    }

    /// Replaces the whole content of `table` with `batches` in one commit (e.g.
    /// `subscribers` on a topology reload). Returns the new Delta version.
    pub fn overwrite(&self, table: Table, batches: Vec<RecordBatch>) -> Result<i64, LakeError> {
        for b in &batches {
            check_schema(table, b)?;
        }
        let inner = self.inner.clone();
        self.block_on(async move { inner.overwrite(table, batches).await })
    }

    /// Reads `table` (latest snapshot), optionally only `columns`, into memory. For
    /// tests, small dimensions and tools; analytical queries go through DataFusion.
    pub fn read_table(
        &self,
        table: Table,
        columns: Option<&[&str]>,
    ) -> Result<Vec<RecordBatch>, LakeError> {
        let inner = self.inner.clone();
        let cols: Option<Vec<String>> = columns.map(|c| c.iter().map(|s| s.to_string()).collect());
        self.block_on(async move { inner.read(table, cols).await })
    }

    /// Rows in `table` per the Delta log statistics (no data read).
    pub fn row_count(&self, table: Table) -> Result<u64, LakeError> {
        Ok(self.info_table(table)?.rows)
    }

    pub(crate) fn inner(&self) -> &Arc<Inner> {
        &self.inner
    }
}

impl Inner {
    pub(crate) fn table_uri(&self, table: Table) -> String {
        format!("{}/{}", self.base, table.name())
    }

    pub(crate) fn delta_err(&self, table: Table) -> impl Fn(DeltaTableError) -> LakeError + '_ {
        move |e| LakeError::delta(table.name(), &self.table_uri(table), e)
    }

    pub(crate) fn writer_properties(&self, table: Table) -> Result<WriterProperties, LakeError> {
        self.opts.writer_properties(table)
    }

    fn url(&self, table: Table) -> Result<deltalake::DeltaTableBuilder, LakeError> {
        let uri = self.table_uri(table);
        if let (Some(local), true) = (&self.local, self.opts.create) {
            let d = local.join(table.name());
            std::fs::create_dir_all(&d).map_err(|e| LakeError::Root {
                root: self.root.clone(),
                reason: format!("cannot create {}: {e}", d.display()),
            })?;
        }
        let url = deltalake::ensure_table_uri(&uri).map_err(self.delta_err(table))?;
        Ok(DeltaTableBuilder::from_url(url)
            .map_err(self.delta_err(table))?
            .with_storage_options(self.opts.storage_options.clone()))
    }

    /// Creates missing tables (when `create`) and checks schema versions.
    async fn init(&self) -> Result<(), LakeError> {
        let mut found = 0;
        for t in Table::ALL {
            if let Some(dt) = self.load(t, self.opts.create).await? {
                found += 1;
                check_version(t, &dt)?;
            }
        }
        if found == 0 && !self.opts.create {
            return Err(LakeError::NotALake {
                root: self.root.clone(),
            });
        }
        Ok(())
    }

    /// The table at its latest version, created first when missing and `create`;
    /// `None` when missing and not `create`.
    pub(crate) async fn load(
        &self,
        table: Table,
        create: bool,
    ) -> Result<Option<DeltaTable>, LakeError> {
        let mut cache = self.cache.lock().await;
        if let Some(dt) = cache.get_mut(&table) {
            dt.update_incremental(None)
                .await
                .map_err(self.delta_err(table))?;
            return Ok(Some(dt.clone()));
        }
        if let Some(local) = &self.local {
            if !create && !local.join(table.name()).join("_delta_log").is_dir() {
                return Ok(None);
            }
        }
        let dt = match self.url(table)?.load().await {
            Ok(dt) => dt,
            Err(DeltaTableError::NotATable(_)) if create => self.create(table).await?,
            Err(DeltaTableError::NotATable(_)) => return Ok(None),
            Err(e) => return Err(self.delta_err(table)(e)),
        };
        cache.insert(table, dt.clone());
        Ok(Some(dt))
    }

    pub(crate) async fn require(&self, table: Table) -> Result<DeltaTable, LakeError> {
        self.load(table, self.opts.create).await?.ok_or_else(|| {
            self.delta_err(table)(DeltaTableError::NotATable(format!(
                "table {} does not exist in lake {}",
                table.name(),
                self.root
            )))
        })
    }

    async fn create(&self, table: Table) -> Result<DeltaTable, LakeError> {
        let schema = table.schema();
        let st: StructType = schema
            .as_ref()
            .try_into_kernel()
            .map_err(|e| self.delta_err(table)(DeltaTableError::from(e)))?;
        let dt = self.url(table)?.build().map_err(self.delta_err(table))?;
        let parts: Vec<String> = table
            .partition_columns()
            .iter()
            .map(|s| s.to_string())
            .collect();
        let res = dt
            .create()
            .with_table_name(table.name())
            .with_comment(table.description())
            .with_columns(st.fields().cloned())
            .with_partition_columns(parts)
            .with_configuration([
                (
                    SCHEMA_VERSION_KEY.to_string(),
                    Some(SCHEMA_VERSION.to_string()),
                ),
                (TABLE_NAME_KEY.to_string(), Some(table.name().to_string())),
            ])
            .with_raise_if_key_not_exists(false)
            .with_save_mode(SaveMode::Ignore)
            .await;
        match res {
            Ok(dt) => Ok(dt),
            // Another process created it concurrently: load theirs.
            Err(_) => self.url(table)?.load().await.map_err(self.delta_err(table)),
        }
    }

    pub(crate) async fn txn_version(
        &self,
        table: Table,
        app: &str,
    ) -> Result<Option<i64>, LakeError> {
        let Some(dt) = self.load(table, false).await? else {
            return Ok(None);
        };
        let snap = dt.snapshot().map_err(self.delta_err(table))?;
        snap.transaction_version(dt.log_store().as_ref(), app)
            .await
            .map_err(self.delta_err(table))
    }

    async fn commit_windows(
        &self,
        app: &str,
        source: &str,
        mut windows: Vec<(i64, TableBatches)>,
    ) -> Result<CommitReport, LakeError> {
        windows.sort_by_key(|(w, _)| *w);
        for (_, tb) in &windows {
            if let Some(t) = tb.tables().find(|t| !t.is_windowed()) {
                return Err(LakeError::Schema {
                    table: t.name().into(),
                    reason: "not a windowed table; use append/overwrite".into(),
                });
            }
        }
        let mut report = CommitReport::default();
        if windows.is_empty() {
            return Ok(report);
        }
        for (done, table) in Table::WINDOWED.into_iter().enumerate() {
            if self.opts.fail_after_tables == Some(done) {
                return Err(LakeError::Runtime(format!(
                    "injected failure before committing table {table}"
                )));
            }
            self.require(table).await?;
            let committed = self.txn_version(table, app).await?;
            let mut batches = Vec::new();
            let mut rows = 0;
            let mut skipped = 0;
            let mut last = None;
            for (w, tb) in windows.iter_mut() {
                let b = tb.take(table);
                let n: usize = b.iter().map(RecordBatch::num_rows).sum();
                if committed.is_some_and(|c| *w <= c) {
                    skipped += n;
                    continue;
                }
                rows += n;
                batches.extend(b);
                last = Some(*w);
            }
            let Some(version) = last else {
                report.tables.push(TableCommit {
                    table,
                    rows: 0,
                    skipped_rows: skipped,
                    delta_version: None,
                    txn_version: committed,
                });
                continue;
            };
            let txn = Transaction::new_with_last_update(
                app,
                version,
                Some(chrono::Utc::now().timestamp_millis()),
            );
            let meta = [
                ("cemflow.source".to_string(), serde_json::json!(source)),
                (
                    "cemflow.window_start".to_string(),
                    serde_json::json!(version),
                ),
            ];
            let dv = self
                .write_commit(table, batches, Some((txn, meta.into_iter().collect())))
                .await?;
            tracing::debug!(
                table = table.name(),
                rows,
                version,
                delta_version = dv,
                "window commit"
            );
            report.tables.push(TableCommit {
                table,
                rows,
                skipped_rows: skipped,
                delta_version: Some(dv),
                txn_version: Some(version),
            });
        }
        Ok(report)
    }

    /// Writes `batches` as new files and commits them (plus the app transaction) in one
    /// Delta version. An empty `batches` with a transaction commits the txn alone.
    pub(crate) async fn write_commit(
        &self,
        table: Table,
        batches: Vec<RecordBatch>,
        txn: Option<(Transaction, HashMap<String, serde_json::Value>)>,
    ) -> Result<i64, LakeError> {
        let err = self.delta_err(table);
        let mut dt = self.require(table).await?;
        let mut actions: Vec<Action> = Vec::new();
        if batches.iter().any(|b| b.num_rows() > 0) {
            let mut writer = RecordBatchWriter::for_table(&dt)
                .map_err(&err)?
                .with_writer_properties(self.writer_properties(table)?)
                .with_target_file_size(self.opts.target_file_size);
            for b in batches {
                if b.num_rows() > 0 {
                    writer.write(b).await.map_err(&err)?;
                }
            }
            actions.extend(
                writer
                    .flush()
                    .await
                    .map_err(&err)?
                    .into_iter()
                    .map(Action::Add),
            );
        }
        let mut props = CommitProperties::default();
        if let Some((t, meta)) = txn {
            props = props.with_application_transaction(t).with_metadata(meta);
        }
        let parts: Vec<String> = table
            .partition_columns()
            .iter()
            .map(|s| s.to_string())
            .collect();
        let op = DeltaOperation::Write {
            mode: SaveMode::Append,
            partition_by: (!parts.is_empty()).then_some(parts),
            predicate: None,
        };
        let snapshot = dt.snapshot().map_err(&err)?;
        let finalized = CommitBuilder::from(props)
            .with_actions(actions)
            .build(Some(snapshot), dt.log_store(), op)
            .await
            .map_err(&err)?;
        let version = i64::try_from(finalized.version()).unwrap_or(i64::MAX);
        dt.update_incremental(None).await.map_err(&err)?;
        self.cache.lock().await.insert(table, dt);
        Ok(version)
    }

    async fn overwrite(&self, table: Table, batches: Vec<RecordBatch>) -> Result<i64, LakeError> {
        let err = self.delta_err(table);
        let dt = self.require(table).await?;
        let dt = dt
            .write(batches)
            .with_save_mode(SaveMode::Overwrite)
            .with_writer_properties(self.writer_properties(table)?)
            .await
            .map_err(&err)?;
        let v = dt
            .version()
            .and_then(|v| i64::try_from(v).ok())
            .unwrap_or(0);
        self.cache.lock().await.insert(table, dt);
        Ok(v)
    }

    pub(crate) async fn read(
        &self,
        table: Table,
        columns: Option<Vec<String>>,
    ) -> Result<Vec<RecordBatch>, LakeError> {
        let err = self.delta_err(table);
        let dt = self.require(table).await?;
        let mut scan = dt.scan_table();
        if let Some(c) = columns {
            scan = scan.with_columns(c);
        }
        let (_, stream) = scan.await.map_err(&err)?;
        let batches = deltalake::operations::collect_sendable_stream(stream)
            .await
            .map_err(|e| err(DeltaTableError::from(e)))?;
        batches.into_iter().map(|b| conform(table, b)).collect()
    }

    pub(crate) async fn forget(&self, table: Table) {
        self.cache.lock().await.remove(&table);
    }
}

/// Casts a scanned batch back to the table's declared column types (DataFusion scans
/// return string views and may change partition column types).
fn conform(table: Table, batch: RecordBatch) -> Result<RecordBatch, LakeError> {
    let schema = table.schema();
    let arrow_err = |e| LakeError::arrow(table.name(), e);
    let mut fields = Vec::with_capacity(batch.num_columns());
    let mut columns = Vec::with_capacity(batch.num_columns());
    for (f, c) in batch.schema().fields().iter().zip(batch.columns()) {
        match schema.field_with_name(f.name()) {
            Ok(want) if want.data_type() != c.data_type() => {
                columns.push(arrow::compute::cast(c, want.data_type()).map_err(arrow_err)?);
                fields.push(want.clone().with_nullable(true));
            }
            _ => {
                columns.push(c.clone());
                fields.push(f.as_ref().clone());
            }
        }
    }
    RecordBatch::try_new(Arc::new(arrow::datatypes::Schema::new(fields)), columns)
        .map_err(arrow_err)
}

/// Checks `cemflow.schema_version` of an existing table.
fn check_version(table: Table, dt: &DeltaTable) -> Result<(), LakeError> {
    let Ok(snap) = dt.snapshot() else {
        return Ok(());
    };
    let found = snap
        .metadata()
        .configuration()
        .get(SCHEMA_VERSION_KEY)
        .cloned();
    match found {
        Some(v) if v == SCHEMA_VERSION.to_string() => Ok(()),
        Some(v) => Err(LakeError::SchemaVersion {
            table: table.name().into(),
            found: v,
            expected: SCHEMA_VERSION,
        }),
        None => Err(LakeError::SchemaVersion {
            table: table.name().into(),
            found: "none (not a cemflow table)".into(),
            expected: SCHEMA_VERSION,
        }),
    }
}

/// The schema version stored in a table's configuration.
pub(crate) fn schema_version_of(dt: &DeltaTable) -> Option<String> {
    dt.snapshot()
        .ok()?
        .metadata()
        .configuration()
        .get(SCHEMA_VERSION_KEY)
        .cloned()
}

/// Whether a local path looks like a lake root (has at least one table log).
pub fn looks_like_lake(path: &Path) -> bool {
    Table::ALL
        .iter()
        .any(|t| path.join(t.name()).join("_delta_log").is_dir())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_are_classified() {
        assert!(matches!(
            classify_root("/tmp/lake").unwrap().0,
            RootKind::Local(_)
        ));
        assert!(matches!(
            classify_root("file:///tmp/lake").unwrap().0,
            RootKind::Local(_)
        ));
        assert!(matches!(
            classify_root("relative/dir").unwrap().0,
            RootKind::Local(_)
        ));
        assert_eq!(
            classify_root("s3://bucket/lake/").unwrap(),
            (RootKind::Url, "s3://bucket/lake".to_string())
        );
        assert_eq!(classify_root("S3A://bucket/a/b").unwrap().0, RootKind::Url);
        match classify_root("gs://bucket/lake") {
            Err(LakeError::UnsupportedScheme { scheme, .. }) => assert_eq!(scheme, "gs"),
            other => panic!("unexpected {other:?}"),
        }
        assert!(classify_root("s3://").is_err());
        assert!(classify_root("").is_err());
    }

    #[test]
    fn app_ids() {
        assert_eq!(app_id("probe-1").unwrap(), "cemflow/probe-1");
        assert!(app_id("").is_err());
        assert!(app_id("a b").is_err());
    }
}

//! Lake maintenance: `info` (tables, versions, rows, files, bytes), `optimize`
//! (bin-packing compaction of small files to the target file size, module `compact`, or
//! a z-order rewrite by `user_key`) and `vacuum` (deleting files no longer referenced,
//! older than a retention period).

use crate::error::LakeError;
use crate::lake::{schema_version_of, Lake};
use crate::schema::Table;
use deltalake::operations::optimize::OptimizeType;
use deltalake::operations::vacuum::VacuumMode;
use deltalake::DeltaTableError;
use futures::StreamExt;
use serde::Serialize;
use std::collections::HashSet;
use std::num::NonZeroU64;

/// One table's state.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct TableInfo {
    /// Table name.
    pub table: String,
    /// Table URI.
    pub uri: String,
    /// False when the table has no Delta log (an existing lake missing a table).
    pub exists: bool,
    /// Latest Delta version.
    pub version: Option<i64>,
    /// Active data files.
    pub files: usize,
    /// Rows, from the files' statistics (`numRecords`).
    pub rows: u64,
    /// Bytes of the active data files.
    pub bytes: u64,
    /// Distinct partitions with data.
    pub partitions: usize,
    /// Smallest active file, bytes (0 when none).
    pub smallest_file: u64,
    /// Largest active file, bytes.
    pub largest_file: u64,
    /// `cemflow.schema_version` of the table.
    pub schema_version: Option<String>,
}

/// One active data file of a table.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct FileInfo {
    /// Path relative to the table root.
    pub path: String,
    /// Partition values (`column → value`, `None` for null), in column-name order.
    pub partition: Vec<(String, Option<String>)>,
    /// Size in bytes.
    pub size: u64,
    /// Rows, from the file's statistics.
    pub rows: u64,
}

/// What `optimize` did to one table.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct OptimizeReport {
    /// Table name.
    pub table: String,
    /// Files written.
    pub files_added: u64,
    /// Files replaced.
    pub files_removed: u64,
    /// Bytes written.
    pub bytes_added: i64,
    /// Bytes replaced.
    pub bytes_removed: i64,
    /// Partitions that had files rewritten.
    pub partitions_optimized: u64,
    /// Delta version after the operation.
    pub version: Option<i64>,
}

/// What `vacuum` did to one table.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct VacuumReport {
    /// Table name.
    pub table: String,
    /// Files deleted (or that would be, in a dry run).
    pub files_deleted: usize,
    /// True for a dry run.
    pub dry_run: bool,
}

/// Options of [`Lake::optimize`].
#[derive(Clone, Debug)]
pub struct OptimizeOptions {
    /// Tables to optimize (all when empty).
    pub tables: Vec<Table>,
    /// Target file size, bytes (default 128 MiB).
    pub target_size: u64,
    /// Files smaller than this are compacted; `None`: half of `target_size`. After a
    /// compaction each partition has at most one file below it.
    pub min_size: Option<u64>,
    /// Z-order by `user_key` the tables that have it (rewrites whole partitions into
    /// target-size files; tables without `user_key` are compacted).
    pub zorder_user_key: bool,
}

impl OptimizeOptions {
    /// The size below which a file is compacted.
    pub fn min_size(&self) -> u64 {
        self.min_size.unwrap_or(self.target_size / 2)
    }
}

impl Default for OptimizeOptions {
    fn default() -> Self {
        OptimizeOptions {
            tables: Vec::new(),
            target_size: 128 * 1024 * 1024,
            min_size: None,
            zorder_user_key: false,
        }
    }
}

/// Options of [`Lake::vacuum`].
#[derive(Clone, Debug)]
pub struct VacuumOptions {
    /// Tables to vacuum (all when empty).
    pub tables: Vec<Table>,
    /// Keep unreferenced files younger than this. Must exceed the longest write and the
    /// longest reader of an old snapshot (default 7 days, Delta's default).
    pub retention: std::time::Duration,
    /// Only list what would be deleted.
    pub dry_run: bool,
    /// Also delete files never referenced by the log (left by a writer killed before its
    /// commit); otherwise only files removed by earlier commits.
    pub full: bool,
}

impl Default for VacuumOptions {
    fn default() -> Self {
        VacuumOptions {
            tables: Vec::new(),
            retention: std::time::Duration::from_secs(7 * 24 * 3600),
            dry_run: false,
            full: true,
        }
    }
}

fn pick(tables: &[Table]) -> Vec<Table> {
    if tables.is_empty() {
        Table::ALL.to_vec()
    } else {
        tables.to_vec()
    }
}

fn num_records(stats: Option<String>) -> u64 {
    stats
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
        .and_then(|v| v.get("numRecords").and_then(|n| n.as_u64()))
        .unwrap_or(0)
}

impl Lake {
    /// State of every table.
    pub fn info(&self) -> Result<Vec<TableInfo>, LakeError> {
        Table::ALL.iter().map(|t| self.info_table(*t)).collect()
    }

    /// The active data files of `table` at its latest version (empty when the table does
    /// not exist).
    pub fn files(&self, table: Table) -> Result<Vec<FileInfo>, LakeError> {
        let inner = self.inner().clone();
        self.block_on(async move {
            let Some(dt) = inner.load(table, false).await? else {
                return Ok(Vec::new());
            };
            let err = inner.delta_err(table);
            let snap = dt.snapshot().map_err(&err)?;
            let log_store = dt.log_store();
            let mut out = Vec::new();
            let mut stream = snap.snapshot().file_views(log_store.as_ref(), None);
            while let Some(f) = stream.next().await {
                let f = f.map_err(&err)?;
                let mut partition: Vec<(String, Option<String>)> =
                    f.partition_values_map().into_iter().collect();
                partition.sort();
                out.push(FileInfo {
                    path: f.path().into_owned(),
                    partition,
                    size: u64::try_from(f.size()).unwrap_or(0),
                    rows: num_records(f.stats()),
                });
            }
            Ok(out)
        })
    }

    /// State of one table.
    pub fn info_table(&self, table: Table) -> Result<TableInfo, LakeError> {
        let inner = self.inner().clone();
        self.block_on(async move {
            let uri = inner.table_uri(table);
            let Some(dt) = inner.load(table, false).await? else {
                return Ok(TableInfo {
                    table: table.name().into(),
                    uri,
                    exists: false,
                    version: None,
                    files: 0,
                    rows: 0,
                    bytes: 0,
                    partitions: 0,
                    smallest_file: 0,
                    largest_file: 0,
                    schema_version: None,
                });
            };
            let err = inner.delta_err(table);
            let snap = dt.snapshot().map_err(&err)?;
            let log_store = dt.log_store();
            let mut files = 0;
            let mut rows = 0;
            let mut bytes = 0u64;
            let mut smallest = u64::MAX;
            let mut largest = 0u64;
            let mut parts = HashSet::new();
            let mut stream = snap.snapshot().file_views(log_store.as_ref(), None);
            while let Some(f) = stream.next().await {
                let f = f.map_err(&err)?;
                let size = u64::try_from(f.size()).unwrap_or(0);
                files += 1;
                bytes += size;
                smallest = smallest.min(size);
                largest = largest.max(size);
                rows += num_records(f.stats());
                let mut pv: Vec<(String, Option<String>)> =
                    f.partition_values_map().into_iter().collect();
                pv.sort();
                parts.insert(pv);
            }
            Ok(TableInfo {
                table: table.name().into(),
                uri,
                exists: true,
                version: dt.version().and_then(|v| i64::try_from(v).ok()),
                files,
                rows,
                bytes,
                partitions: parts.len(),
                smallest_file: if files == 0 { 0 } else { smallest },
                largest_file: largest,
                schema_version: schema_version_of(&dt),
            })
        })
    }

    /// Compacts small files: per partition, the files smaller than
    /// [`OptimizeOptions::min_size`] are rewritten into files of `target_size` (at most
    /// one smaller remainder per partition), or, with `zorder_user_key`, every partition
    /// of the tables having `user_key` is rewritten sorted along the z-order curve of
    /// `user_key`. Safe to run next to a writer: the commit only removes files it
    /// rewrote, and concurrent appends do not conflict with it.
    pub fn optimize(&self, opts: &OptimizeOptions) -> Result<Vec<OptimizeReport>, LakeError> {
        if opts.target_size == 0 {
            return Err(LakeError::Option {
                option: "target_size",
                reason: "must be positive".into(),
            });
        }
        let mut out = Vec::new();
        for table in pick(&opts.tables) {
            let inner = self.inner().clone();
            let target = opts.target_size;
            let min = opts.min_size().min(target);
            let zorder = opts.zorder_user_key && table.schema().index_of("user_key").is_ok();
            let r = self.block_on(async move {
                if !zorder {
                    if inner.load(table, false).await?.is_none() {
                        return Ok(None);
                    }
                    let c = inner.compact(table, target, min).await?;
                    return Ok(Some(OptimizeReport {
                        table: table.name().into(),
                        files_added: c.files_added,
                        files_removed: c.files_removed,
                        bytes_added: c.bytes_added,
                        bytes_removed: c.bytes_removed,
                        partitions_optimized: c.partitions,
                        version: c.version,
                    }));
                }
                let Some(dt) = inner.load(table, false).await? else {
                    return Ok(None);
                };
                let err = inner.delta_err(table);
                let props = inner.writer_properties(table)?;
                let (dt, m) = dt
                    .optimize()
                    .with_type(OptimizeType::ZOrder(vec!["user_key".to_string()]))
                    .with_target_size(NonZeroU64::new(target).unwrap_or(NonZeroU64::MIN))
                    .with_writer_properties(props)
                    .await
                    .map_err(&err)?;
                let version = dt.version().and_then(|v| i64::try_from(v).ok());
                inner.forget(table).await;
                Ok::<_, LakeError>(Some(OptimizeReport {
                    table: table.name().into(),
                    files_added: m.num_files_added,
                    files_removed: m.num_files_removed,
                    bytes_added: m.files_added.total_size,
                    bytes_removed: m.files_removed.total_size,
                    partitions_optimized: m.partitions_optimized,
                    version,
                }))
            })?;
            out.extend(r);
        }
        Ok(out)
    }

    /// Deletes data files no longer referenced by the tables' latest versions and older
    /// than the retention. A retention shorter than Delta's 7-day default is allowed (the
    /// operator asked for it), which makes time travel to older versions impossible.
    pub fn vacuum(&self, opts: &VacuumOptions) -> Result<Vec<VacuumReport>, LakeError> {
        let retention =
            chrono::Duration::from_std(opts.retention).map_err(|e| LakeError::Root {
                root: self.root().to_string(),
                reason: format!("vacuum retention: {e}"),
            })?;
        let mut out = Vec::new();
        for table in pick(&opts.tables) {
            let inner = self.inner().clone();
            let dry_run = opts.dry_run;
            let mode = if opts.full {
                VacuumMode::Full
            } else {
                VacuumMode::Lite
            };
            let r = self.block_on(async move {
                let Some(dt) = inner.load(table, false).await? else {
                    return Ok(None);
                };
                let err = inner.delta_err(table);
                let (_dt, m) = dt
                    .vacuum()
                    .with_retention_period(retention)
                    .with_enforce_retention_duration(false)
                    .with_dry_run(dry_run)
                    .with_mode(mode)
                    .await
                    .map_err(|e: DeltaTableError| err(e))?;
                inner.forget(table).await;
                Ok::<_, LakeError>(Some(VacuumReport {
                    table: table.name().into(),
                    files_deleted: m.files_deleted.len(),
                    dry_run: m.dry_run,
                }))
            })?;
            out.extend(r);
        }
        Ok(out)
    }
}

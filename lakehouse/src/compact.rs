//! Bin-packing compaction of small files, the default mode of [`crate::Lake::optimize`].
//!
//! Window commits write one file per partition per commit, so a busy table collects many
//! small files. Compaction rewrites, per partition, every file smaller than the *minimum
//! size* (half the target by default) into files of the *target size* (128 MiB by
//! default): the writer rolls a new file each time the one it writes reaches the target,
//! so a rewritten group yields full files plus at most one remainder. Files already at
//! least the minimum are left alone. Afterwards every partition has at most one file
//! smaller than the minimum (the remainder), and running `optimize` again rewrites
//! nothing until new small files arrive.
//!
//! The rewrite is one Delta commit per table (`OPTIMIZE`, `remove` of the small files with
//! `dataChange = false`, `add` of the new ones): readers see either the old or the new
//! files, and appends committed meanwhile do not conflict with it.

use crate::error::LakeError;
use crate::lake::Inner;
use crate::schema::Table;
use arrow::array::{ArrayRef, RecordBatch, StringArray};
use deltalake::datafusion::object_store::ObjectStoreExt;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::kernel::{Action, Remove};
use deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use deltalake::protocol::DeltaOperation;
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use deltalake::DeltaTableError;
use futures::StreamExt;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Rows per batch when reading a file back for rewriting.
const READ_BATCH_ROWS: usize = 64 * 1024;

/// A data file considered for compaction.
#[derive(Clone, Debug)]
pub(crate) struct Candidate {
    /// Partition values in the log (`column → value`, `None` for null).
    pub(crate) partition: BTreeMap<String, Option<String>>,
    /// Location relative to the table root.
    pub(crate) location: deltalake::Path,
    /// Size in bytes.
    pub(crate) size: u64,
    /// The `remove` action retiring the file.
    pub(crate) remove: Remove,
}

/// The files to rewrite, per partition: every partition with at least two files smaller
/// than `min_size` gets one group of exactly those files. Partitions are in key order,
/// files in the log's order.
pub(crate) fn plan(files: Vec<Candidate>, min_size: u64) -> Vec<Vec<Candidate>> {
    let mut by_partition: BTreeMap<Vec<(String, Option<String>)>, Vec<Candidate>> = BTreeMap::new();
    for f in files.into_iter().filter(|f| f.size < min_size) {
        let key = f.partition.clone().into_iter().collect();
        by_partition.entry(key).or_default().push(f);
    }
    by_partition
        .into_values()
        .filter(|group| group.len() >= 2)
        .collect()
}

/// What a compaction did to one table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Compaction {
    pub(crate) files_removed: u64,
    pub(crate) bytes_removed: i64,
    pub(crate) files_added: u64,
    pub(crate) bytes_added: i64,
    pub(crate) partitions: u64,
    /// Delta version of the commit, `None` when there was nothing to rewrite.
    pub(crate) version: Option<i64>,
}

impl Inner {
    /// Compacts `table`'s small files (see the module docs).
    pub(crate) async fn compact(
        &self,
        table: Table,
        target_size: u64,
        min_size: u64,
    ) -> Result<Compaction, LakeError> {
        let err = self.delta_err(table);
        let Some(dt) = self.load(table, false).await? else {
            return Ok(Compaction::default());
        };
        let snapshot = dt.snapshot().map_err(&err)?;
        let log_store = dt.log_store();
        let mut files = Vec::new();
        let mut views = snapshot.snapshot().file_views(log_store.as_ref(), None);
        while let Some(f) = views.next().await {
            let f = f.map_err(&err)?;
            files.push(Candidate {
                partition: f.partition_values_map().into_iter().collect(),
                location: f.object_store_path(),
                size: u64::try_from(f.size()).unwrap_or(0),
                remove: f.remove_action(false),
            });
        }
        drop(views);
        let groups = plan(files, min_size);
        let mut out = Compaction::default();
        if groups.is_empty() {
            return Ok(out);
        }
        let store = log_store.object_store(None);
        let props = self.writer_properties(table)?;
        let mut actions = Vec::new();
        for group in groups {
            let mut writer = RecordBatchWriter::for_table(&dt)
                .map_err(&err)?
                .with_writer_properties(props.clone())
                .with_target_file_size(target_size);
            for file in &group {
                let bytes = store
                    .get(&file.location)
                    .await
                    .map_err(|e| err(DeltaTableError::from(e)))?
                    .bytes()
                    .await
                    .map_err(|e| err(DeltaTableError::from(e)))?;
                let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
                    .and_then(|b| b.with_batch_size(READ_BATCH_ROWS).build())
                    .map_err(|e| err(DeltaTableError::from(e)))?;
                for batch in reader {
                    let batch = batch.map_err(|e| LakeError::arrow(table.name(), e))?;
                    let batch = with_partition_columns(table, batch, &file.partition)?;
                    writer.write(batch).await.map_err(&err)?;
                }
                out.files_removed += 1;
                out.bytes_removed += file.remove.size.unwrap_or(0);
                actions.push(Action::Remove(file.remove.clone()));
            }
            for mut add in writer.flush().await.map_err(&err)? {
                add.data_change = false;
                out.files_added += 1;
                out.bytes_added += add.size;
                actions.push(Action::Add(add));
            }
            out.partitions += 1;
        }
        let op = DeltaOperation::Optimize {
            predicate: None,
            target_size: i64::try_from(target_size).unwrap_or(i64::MAX),
        };
        let finalized = CommitBuilder::from(CommitProperties::default())
            .with_actions(actions)
            .build(Some(snapshot), log_store.clone(), op)
            .await
            .map_err(&err)?;
        out.version = Some(i64::try_from(finalized.version()).unwrap_or(i64::MAX));
        self.forget(table).await;
        Ok(out)
    }
}

/// A data file's batch (without partition columns, as stored) → a batch of the table's
/// schema, the partition columns filled from the file's partition values.
fn with_partition_columns(
    table: Table,
    batch: RecordBatch,
    partition: &BTreeMap<String, Option<String>>,
) -> Result<RecordBatch, LakeError> {
    let schema = table.schema();
    let arrow_err = |e| LakeError::arrow(table.name(), e);
    let n = batch.num_rows();
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let column = if table.partition_columns().contains(&field.name().as_str()) {
            let value = partition.get(field.name()).cloned().flatten();
            let text: ArrayRef = Arc::new(StringArray::from(vec![value; n]));
            arrow::compute::cast(&text, field.data_type()).map_err(arrow_err)?
        } else {
            let c = batch
                .column_by_name(field.name())
                .ok_or_else(|| LakeError::Schema {
                    table: table.name().into(),
                    reason: format!("data file without column {}", field.name()),
                })?;
            if c.data_type() == field.data_type() {
                c.clone()
            } else {
                arrow::compute::cast(c, field.data_type()).map_err(arrow_err)?
            }
        };
        columns.push(column);
    }
    RecordBatch::try_new(schema, columns).map_err(arrow_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(day: &str, size: u64) -> Candidate {
        let partition: BTreeMap<String, Option<String>> =
            [("date".to_string(), Some(day.to_string()))].into();
        Candidate {
            partition: partition.clone(),
            location: deltalake::Path::from(format!("date={day}/f{size}.parquet")),
            size,
            remove: Remove {
                path: format!("date={day}/f{size}.parquet"),
                data_change: false,
                deletion_timestamp: None,
                extended_file_metadata: None,
                partition_values: Some(partition.into_iter().collect()),
                size: Some(size as i64),
                tags: None,
                deletion_vector: None,
                base_row_id: None,
                default_row_commit_version: None,
            },
        }
    }

    #[test]
    fn only_partitions_with_several_small_files_are_rewritten() {
        let files = vec![
            file("2025-01-06", 10),
            file("2025-01-06", 100),
            file("2025-01-06", 20),
            file("2025-01-07", 5),
            file("2025-01-07", 90),
            file("2025-01-08", 70),
            file("2025-01-08", 80),
        ];
        let groups = plan(files, 64);
        assert_eq!(groups.len(), 1);
        let sizes: Vec<u64> = groups[0].iter().map(|f| f.size).collect();
        assert_eq!(sizes, [10, 20]);
    }

    #[test]
    fn nothing_to_do_on_a_compacted_table() {
        assert!(plan(vec![file("2025-01-06", 200), file("2025-01-06", 3)], 64).is_empty());
        assert!(plan(Vec::new(), 64).is_empty());
    }
}

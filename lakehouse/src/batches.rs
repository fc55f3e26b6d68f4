//! [`TableBatches`]: the rows of one or several closed windows, per table, ready for
//! [`crate::Lake::commit_window`].

use crate::convert;
use crate::error::LakeError;
use crate::rows::{FlowTelemetryRow, TelemetryRow};
use crate::schema::Table;
use arrow::array::RecordBatch;
use cemflow_dataflow::{AnomalyRow, ElementMinute, FlowRow, UserMinute};
use std::collections::BTreeMap;

/// Record batches per table, each checked against the table's schema when added.
#[derive(Clone, Debug, Default)]
pub struct TableBatches {
    map: BTreeMap<Table, Vec<RecordBatch>>,
}

impl TableBatches {
    /// An empty set.
    pub fn new() -> TableBatches {
        TableBatches::default()
    }

    /// Adds a batch for `table`. Its columns must match the table's schema by name and
    /// type, in order ([`Table::schema`]); empty batches are dropped.
    pub fn push(&mut self, table: Table, batch: RecordBatch) -> Result<(), LakeError> {
        check_schema(table, &batch)?;
        if batch.num_rows() > 0 {
            self.map.entry(table).or_default().push(batch);
        }
        Ok(())
    }

    /// Adds `user_minute` rows.
    pub fn add_user_minutes(&mut self, rows: &[UserMinute]) -> Result<(), LakeError> {
        if rows.is_empty() {
            return Ok(());
        }
        self.push(Table::UserMinute, convert::user_minute_batch(rows)?)
    }

    /// Adds `element_minute` rows.
    pub fn add_element_minutes(&mut self, rows: &[ElementMinute]) -> Result<(), LakeError> {
        if rows.is_empty() {
            return Ok(());
        }
        self.push(Table::ElementMinute, convert::element_minute_batch(rows)?)
    }

    /// Adds `anomalies` rows.
    pub fn add_anomalies(&mut self, rows: &[AnomalyRow]) -> Result<(), LakeError> {
        if rows.is_empty() {
            return Ok(());
        }
        self.push(Table::Anomalies, convert::anomalies_batch(rows)?)
    }

    /// Adds `flows` rows.
    pub fn add_flows(&mut self, rows: &[FlowRow]) -> Result<(), LakeError> {
        if rows.is_empty() {
            return Ok(());
        }
        self.push(Table::Flows, convert::flows_batch(rows)?)
    }

    /// Adds `telemetry` rows.
    pub fn add_telemetry(&mut self, rows: &[TelemetryRow]) -> Result<(), LakeError> {
        if rows.is_empty() {
            return Ok(());
        }
        self.push(Table::Telemetry, convert::telemetry_batch(rows)?)
    }

    /// Adds `flow_telemetry` rows.
    pub fn add_flow_telemetry(&mut self, rows: &[FlowTelemetryRow]) -> Result<(), LakeError> {
        if rows.is_empty() {
            return Ok(());
        }
        self.push(Table::FlowTelemetry, convert::flow_telemetry_batch(rows)?)
    }

    /// Moves all batches of `other` into `self`.
    pub fn append(&mut self, other: TableBatches) {
        for (t, mut v) in other.map {
            self.map.entry(t).or_default().append(&mut v);
        }
    }

    /// The batches of `table`.
    pub fn batches(&self, table: Table) -> &[RecordBatch] {
        self.map.get(&table).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Takes the batches of `table` out.
    pub(crate) fn take(&mut self, table: Table) -> Vec<RecordBatch> {
        self.map.remove(&table).unwrap_or_default()
    }

    /// Rows of `table`.
    pub fn rows(&self, table: Table) -> usize {
        self.batches(table).iter().map(RecordBatch::num_rows).sum()
    }

    /// Rows of all tables.
    pub fn total_rows(&self) -> usize {
        self.map.values().flatten().map(RecordBatch::num_rows).sum()
    }

    /// True when no table has a row.
    pub fn is_empty(&self) -> bool {
        self.total_rows() == 0
    }

    /// Tables with at least one batch.
    pub fn tables(&self) -> impl Iterator<Item = Table> + '_ {
        self.map.keys().copied()
    }
}

/// Checks that `batch` has the columns of `table` (name and type, in order).
pub(crate) fn check_schema(table: Table, batch: &RecordBatch) -> Result<(), LakeError> {
    let want = table.schema();
    let got = batch.schema();
    if want.fields().len() != got.fields().len() {
        return Err(LakeError::Schema {
            table: table.name().into(),
            reason: format!(
                "{} columns, expected {}",
                got.fields().len(),
                want.fields().len()
            ),
        });
    }
    for (w, g) in want.fields().iter().zip(got.fields().iter()) {
        if w.name() != g.name() || w.data_type() != g.data_type() {
            return Err(LakeError::Schema {
                table: table.name().into(),
                reason: format!(
                    "column {} {} where {} {} was expected",
                    g.name(),
                    g.data_type(),
                    w.name(),
                    w.data_type()
                ),
            });
        }
    }
    Ok(())
}

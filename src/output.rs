//! Writing rows as JSON Lines, CSV or an aligned text table.

use serde::Serialize;
use std::io::Write;

/// Output format of row-printing commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON object per line.
    #[value(alias = "json")]
    Jsonl,
    /// CSV with a header line.
    Csv,
    /// Aligned columns for people (a chosen subset of fields).
    Table,
}

/// Streams serialisable rows in the chosen format.
pub enum RowWriter<W: Write> {
    /// JSON Lines.
    Jsonl(W),
    /// CSV.
    Csv(Box<csv::Writer<W>>),
    /// Text table: rows are buffered to size the columns.
    Table {
        /// Destination.
        out: W,
        /// Column names.
        columns: &'static [&'static str],
        /// Buffered cells.
        rows: Vec<Vec<String>>,
    },
}

impl<W: Write> RowWriter<W> {
    /// A writer for `format`; `table_columns` picks the fields shown in table mode.
    pub fn new(format: Format, out: W, table_columns: &'static [&'static str]) -> Self {
        match format {
            Format::Jsonl => RowWriter::Jsonl(out),
            Format::Csv => RowWriter::Csv(Box::new(csv::Writer::from_writer(out))),
            Format::Table => RowWriter::Table {
                out,
                columns: table_columns,
                rows: Vec::new(),
            },
        }
    }

    /// Writes one row.
    pub fn write<T: Serialize>(&mut self, row: &T) -> anyhow::Result<()> {
        match self {
            RowWriter::Jsonl(out) => {
                serde_json::to_writer(&mut *out, row)?;
                out.write_all(b"\n")?;
            }
            RowWriter::Csv(w) => w.serialize(row)?,
            RowWriter::Table { columns, rows, .. } => {
                let v = serde_json::to_value(row)?;
                rows.push(
                    columns
                        .iter()
                        .map(|c| match v.get(*c) {
                            None | Some(serde_json::Value::Null) => "-".to_string(),
                            Some(serde_json::Value::String(s)) => s.clone(),
                            Some(other) => other.to_string(),
                        })
                        .collect(),
                );
            }
        }
        Ok(())
    }

    /// Flushes (and for tables, renders) everything.
    pub fn finish(self) -> anyhow::Result<()> {
        match self {
            RowWriter::Jsonl(mut out) => out.flush()?,
            RowWriter::Csv(mut w) => w.flush()?,
            RowWriter::Table {
                mut out,
                columns,
                rows,
            } => {
                let mut widths: Vec<usize> = columns.iter().map(|c| c.len()).collect();
                for r in &rows {
                    for (w, cell) in widths.iter_mut().zip(r) {
                        *w = (*w).max(cell.chars().count());
                    }
                }
                let line = |cells: &mut dyn Iterator<Item = &str>| -> String {
                    cells
                        .zip(&widths)
                        .map(|(c, w)| format!("{c:<w$}"))
                        .collect::<Vec<_>>()
                        .join("  ")
                        .trim_end()
                        .to_string()
                };
                writeln!(out, "{}", line(&mut columns.iter().copied()))?;
                for r in &rows {
                    writeln!(out, "{}", line(&mut r.iter().map(String::as_str)))?;
                }
                out.flush()?;
            }
        }
        Ok(())
    }
}

//! SQL statements with formatted output, and the interactive `cemflow sql` shell.
//!
//! Meta commands (interactive and `-e`): `\d` lists tables and views, `\d NAME` describes
//! one, `\timing` toggles per-statement timing, `\format table|csv|json`, `\refresh`
//! re-reads the lake's latest table versions, `\q` quits. Statements end with `;` and may
//! span lines. An error is printed and the shell stays up.

use crate::error::{QueryError, Result};
use crate::session::{QuerySession, VIEWS};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::pretty::pretty_format_batches;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

/// Output format of statements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// Aligned text table.
    #[default]
    Table,
    /// CSV with a header.
    Csv,
    /// JSON Lines (one object per row).
    Json,
}

impl std::str::FromStr for OutputFormat {
    type Err = QueryError;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "table" => Ok(OutputFormat::Table),
            "csv" => Ok(OutputFormat::Csv),
            "json" | "jsonl" => Ok(OutputFormat::Json),
            o => Err(QueryError::Input(format!(
                "unknown format `{o}` (table, csv, json)"
            ))),
        }
    }
}

fn io(context: &str) -> impl Fn(std::io::Error) -> QueryError + '_ {
    move |source| QueryError::Io {
        context: context.to_string(),
        source,
    }
}

fn arrow_err(e: datafusion::arrow::error::ArrowError) -> QueryError {
    QueryError::DataFusion(datafusion::error::DataFusionError::ArrowError(
        Box::new(e),
        None,
    ))
}

/// Writes `batches` to `out` in `format`.
pub fn write_batches(
    batches: &[RecordBatch],
    format: OutputFormat,
    out: &mut dyn Write,
) -> Result<()> {
    match format {
        OutputFormat::Table => {
            let t = pretty_format_batches(batches).map_err(arrow_err)?;
            writeln!(out, "{t}").map_err(io("writing output"))?;
        }
        OutputFormat::Csv => {
            let mut w = datafusion::arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(&mut *out);
            if batches.is_empty() {
                return Ok(());
            }
            for b in batches {
                w.write(b).map_err(arrow_err)?;
            }
        }
        OutputFormat::Json => {
            let mut w = datafusion::arrow::json::LineDelimitedWriter::new(&mut *out);
            for b in batches {
                w.write(b).map_err(arrow_err)?;
            }
            w.finish().map_err(arrow_err)?;
        }
    }
    Ok(())
}

/// A SQL shell over a [`QuerySession`].
#[derive(Debug)]
pub struct Shell<'a> {
    session: &'a QuerySession,
    /// Output format.
    pub format: OutputFormat,
    /// Print the time of each statement (to `err`).
    pub timing: bool,
}

/// What [`Shell::execute`] asks the caller to do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Keep going.
    Continue,
    /// `\q`: leave.
    Quit,
}

impl<'a> Shell<'a> {
    /// A shell over `session`.
    pub fn new(session: &'a QuerySession, format: OutputFormat) -> Shell<'a> {
        Shell {
            session,
            format,
            timing: false,
        }
    }

    /// Lists tables and views (`\d`) as batches.
    async fn list(&self) -> Result<Vec<RecordBatch>> {
        self.session
            .sql(
                "SELECT table_name, table_type FROM information_schema.tables \
                 WHERE table_schema = 'public' ORDER BY table_type, table_name",
            )
            .await
    }

    async fn describe(&self, name: &str) -> Result<Vec<RecordBatch>> {
        let known = VIEWS.iter().any(|v| v.0 == name)
            || self.session.tables().iter().any(|t| t.name() == name);
        if !known {
            return Err(QueryError::Input(format!(
                "no table or view named `{name}` (\\d lists them)"
            )));
        }
        self.session
            .sql(&format!(
                "SELECT column_name, data_type, is_nullable FROM information_schema.columns \
                 WHERE table_name = {} ORDER BY ordinal_position",
                crate::util::lit(name)
            ))
            .await
    }

    /// Runs one statement or meta command, writing results to `out` and timing to `err`.
    pub async fn execute(
        &mut self,
        input: &str,
        out: &mut (dyn Write + Send),
        err: &mut (dyn Write + Send),
    ) -> Result<Next> {
        let stmt = input.trim().trim_end_matches(';').trim();
        if stmt.is_empty() {
            return Ok(Next::Continue);
        }
        let start = Instant::now();
        let batches = if let Some(meta) = stmt.strip_prefix('\\') {
            let mut parts = meta.split_whitespace();
            match (parts.next().unwrap_or(""), parts.next()) {
                ("q" | "quit", _) => return Ok(Next::Quit),
                ("d", None) => self.list().await?,
                ("d", Some(name)) => self.describe(name).await?,
                ("timing", _) => {
                    self.timing = !self.timing;
                    writeln!(err, "timing {}", if self.timing { "on" } else { "off" })
                        .map_err(io("writing output"))?;
                    return Ok(Next::Continue);
                }
                ("format", Some(f)) => {
                    self.format = f.parse()?;
                    return Ok(Next::Continue);
                }
                ("refresh", _) => {
                    self.session.refresh().await?;
                    return Ok(Next::Continue);
                }
                ("?" | "h" | "help", _) => {
                    writeln!(
                        out,
                        "\\d [NAME]  list tables / describe one\n\\timing    toggle timing\n\
                         \\format table|csv|json\n\\refresh   re-read the lake\n\\q         quit\n\
                         UDFs: mos_to_cei(mos), wilson_lower(k, n[, z])"
                    )
                    .map_err(io("writing output"))?;
                    return Ok(Next::Continue);
                }
                (other, _) => {
                    return Err(QueryError::Input(format!(
                        "unknown command \\{other} (\\? for help)"
                    )))
                }
            }
        } else {
            self.session.sql(stmt).await?
        };
        write_batches(&batches, self.format, out)?;
        if self.timing {
            let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
            writeln!(
                err,
                "({rows} row{}, {:.3} s)",
                if rows == 1 { "" } else { "s" },
                start.elapsed().as_secs_f64()
            )
            .map_err(io("writing output"))?;
        }
        Ok(Next::Continue)
    }

    /// Runs `;`-separated statements of a script (`-e`), stopping at the first error.
    pub async fn execute_script(
        &mut self,
        script: &str,
        out: &mut (dyn Write + Send),
        err: &mut (dyn Write + Send),
    ) -> Result<()> {
        for stmt in split_statements(script) {
            if self.execute(&stmt, out, err).await? == Next::Quit {
                break;
            }
        }
        Ok(())
    }
}

/// Splits a script on `;` outside quotes; backslash commands end at the line end.
pub fn split_statements(script: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    for line in script.lines() {
        if quote.is_none() && cur.trim().is_empty() && line.trim_start().starts_with('\\') {
            out.push(line.trim().to_string());
            cur.clear();
            continue;
        }
        for c in line.chars() {
            match quote {
                Some(q) if c == q => quote = None,
                Some(_) => {}
                None if c == '\'' || c == '"' => quote = Some(c),
                None if c == ';' => {
                    if !cur.trim().is_empty() {
                        out.push(cur.trim().to_string());
                    }
                    cur.clear();
                    continue;
                }
                None => {}
            }
            cur.push(c);
        }
        cur.push('\n');
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

/// The history file: `<lake>/.cemflow_sql_history` for a writable local lake, else
/// `$HOME/.cemflow_sql_history`.
pub fn history_path(session: &QuerySession) -> Option<PathBuf> {
    let root = session.lake().root();
    let local = PathBuf::from(root.strip_prefix("file://").unwrap_or(root));
    if !root.contains("://") || root.starts_with("file://") {
        let meta = std::fs::metadata(&local).ok();
        if meta.is_some_and(|m| m.is_dir() && !m.permissions().readonly()) {
            return Some(local.join(".cemflow_sql_history"));
        }
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cemflow_sql_history"))
}

/// The interactive loop: line editing and history (rustyline), multi-line statements
/// ending with `;`, meta commands, errors printed without leaving. Blocking; statements run
/// on the lake's runtime.
pub fn run_interactive(session: &QuerySession, format: OutputFormat, timing: bool) -> Result<()> {
    use rustyline::error::ReadlineError;
    let mut rl = rustyline::DefaultEditor::new()
        .map_err(|e| QueryError::Input(format!("cannot start the line editor: {e}")))?;
    let hist = history_path(session);
    if let Some(h) = &hist {
        let _ = rl.load_history(h);
    }
    let mut shell = Shell::new(session, format);
    shell.timing = timing;
    eprintln!(
        "cemflow sql over {} — \\d lists tables, \\? helps, \\q quits; end statements with ;",
        session.lake().root()
    );
    let mut buf = String::new();
    loop {
        let prompt = if buf.is_empty() {
            "cemflow> "
        } else {
            "     ..> "
        };
        match rl.readline(prompt) {
            Ok(line) => {
                let t = line.trim();
                if buf.is_empty() && t.starts_with('\\') {
                    let _ = rl.add_history_entry(t);
                    match run_one(session, &mut shell, t) {
                        Ok(Next::Quit) => break,
                        Ok(Next::Continue) => {}
                        Err(e) => eprintln!("error: {e}"),
                    }
                    continue;
                }
                buf.push_str(&line);
                buf.push('\n');
                if !t.ends_with(';') {
                    continue;
                }
                let stmt = std::mem::take(&mut buf);
                let _ = rl.add_history_entry(stmt.trim());
                for s in split_statements(&stmt) {
                    if let Err(e) = run_one(session, &mut shell, &s) {
                        eprintln!("error: {e}");
                        break;
                    }
                }
            }
            Err(ReadlineError::Interrupted) => {
                buf.clear();
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                eprintln!("error: {e}");
                break;
            }
        }
    }
    if let Some(h) = &hist {
        let _ = rl.save_history(h);
    }
    Ok(())
}

fn run_one(session: &QuerySession, shell: &mut Shell<'_>, stmt: &str) -> Result<Next> {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let r = session.block_on(shell.execute(stmt, &mut out, &mut err));
    let _ = std::io::stdout().write_all(&out);
    let _ = std::io::stderr().write_all(&err);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits() {
        let v = split_statements("select 1; select ';' as x;\n\\d\nselect 2");
        assert_eq!(v, vec!["select 1", "select ';' as x", "\\d", "select 2"]);
    }
}

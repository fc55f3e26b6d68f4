//! `cemflow sql`: SQL over the lake (DataFusion), one statement (`-e`) or an interactive
//! shell with history.

use anyhow::Context;
use cemflow_lakehouse::Lake;
use cemflow_queries::shell::{run_interactive, Shell};
use cemflow_queries::{OutputFormat, QuerySession};
use std::sync::Arc;

/// Arguments of `cemflow sql`.
#[derive(clap::Args, Debug)]
pub struct SqlArgs {
    /// Lake root (directory or URI).
    #[arg(long, env = "CEMFLOW_LAKE", value_name = "DIR")]
    pub lake: String,
    /// Run these `;`-separated statements (and `\d`-style commands) and exit.
    #[arg(short = 'e', long = "execute", value_name = "SQL")]
    pub execute: Option<String>,
    /// Output format: table, csv or json (JSON Lines).
    #[arg(long, default_value = "table", value_parser = ["table", "csv", "json", "jsonl"])]
    pub format: String,
    /// Print the time of each statement (stderr).
    #[arg(long)]
    pub timing: bool,
}

/// Runs the command.
pub fn run(args: SqlArgs) -> anyhow::Result<()> {
    let format: OutputFormat = args
        .format
        .parse()
        .map_err(|e: cemflow_queries::QueryError| crate::InputError(e.to_string()))?;
    let lake = Lake::open_existing(&args.lake).map_err(|e| crate::InputError(e.to_string()))?;
    let session = QuerySession::open_blocking(Arc::new(lake)).context("opening the lake")?;
    match &args.execute {
        Some(sql) => {
            let mut shell = Shell::new(&session, format);
            shell.timing = args.timing;
            let mut out = std::io::stdout();
            let mut err = std::io::stderr();
            session
                .block_on(shell.execute_script(sql, &mut out, &mut err))
                .map_err(|e| {
                    if e.is_input() {
                        anyhow::Error::new(crate::InputError(e.to_string()))
                    } else {
                        anyhow::Error::new(e)
                    }
                })
        }
        None => Ok(run_interactive(&session, format, args.timing)?),
    }
}

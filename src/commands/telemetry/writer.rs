//! The lake writer thread of `cemflow telemetry`: commits batches handed over by the
//! reading thread (which never waits on storage beyond a short queue), stopping at the
//! first failed commit.

use anyhow::Context;
use cemflow_lakehouse::{Lake, Table, TableBatches};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Commits queued before the reading thread waits.
const QUEUE: usize = 4;

/// One exactly-once commit: windows (start, rows) of one source id.
pub struct Job {
    /// Source id (`cemflow/<source-id>` app transaction).
    pub source_id: String,
    /// The windows, each with its batches.
    pub windows: Vec<(i64, TableBatches)>,
}

/// What the writer committed.
#[derive(Debug, Default)]
pub struct Written {
    /// `flow_telemetry` rows written.
    pub flow_rows: usize,
    /// `telemetry` rows written.
    pub kpi_rows: usize,
    /// `user_minute` rows (source `flow_telemetry`) written.
    pub user_rows: usize,
    /// Rows skipped because their window was already committed by the source.
    pub skipped_rows: usize,
}

/// Handle of the writer thread.
pub struct Writer {
    tx: Option<SyncSender<Job>>,
    failed: Arc<AtomicBool>,
    thread: Option<JoinHandle<anyhow::Result<Written>>>,
}

impl Writer {
    /// Starts the thread over `lake`.
    pub fn start(lake: Lake) -> Writer {
        let (tx, rx) = sync_channel::<Job>(QUEUE);
        let failed = Arc::new(AtomicBool::new(false));
        let f2 = Arc::clone(&failed);
        let thread = std::thread::spawn(move || {
            let mut w = Written::default();
            for job in rx {
                let r = lake
                    .commit_windows(&job.source_id, job.windows)
                    .with_context(|| {
                        format!("committing telemetry of {} to the lake", job.source_id)
                    });
                match r {
                    Ok(rep) => {
                        for t in &rep.tables {
                            match t.table {
                                Table::FlowTelemetry => w.flow_rows += t.rows,
                                Table::Telemetry => w.kpi_rows += t.rows,
                                Table::UserMinute => w.user_rows += t.rows,
                                _ => {}
                            }
                        }
                        w.skipped_rows += rep.skipped_rows();
                    }
                    Err(e) => {
                        f2.store(true, Ordering::SeqCst);
                        return Err(e);
                    }
                }
            }
            Ok(w)
        });
        Writer {
            tx: Some(tx),
            failed,
            thread: Some(thread),
        }
    }

    /// Queues a commit (waits while the queue is full). An error means the writer has
    /// stopped; [`Writer::finish`] returns its cause.
    pub fn send(&self, job: Job) -> anyhow::Result<()> {
        match &self.tx {
            Some(tx) if !self.failed() => tx
                .send(job)
                .map_err(|_| anyhow::anyhow!("the lake writer stopped")),
            _ => Err(anyhow::anyhow!("the lake writer stopped")),
        }
    }

    /// True once a commit failed.
    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::SeqCst)
    }

    /// Waits for every queued commit; the first commit error, if any.
    pub fn finish(mut self) -> anyhow::Result<Written> {
        drop(self.tx.take());
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(anyhow::anyhow!("the lake writer panicked")),
            None => Ok(Written::default()),
        }
    }
}

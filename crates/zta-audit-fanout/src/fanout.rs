//! The fan-out sink.

use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use async_trait::async_trait;
use zta_core::{AuditError, AuditRecord, AuditSink, Durability};

use crate::spool::{Spool, SpoolConfig, SpoolError};

/// How a [`Target`] takes records.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Mode {
    /// Directly: when the sink cannot take a record, the append fails (and the request denies).
    Required,
    /// Through a local disk spool, forwarded in order in the background.
    Spool(SpoolConfig),
}

/// One sink of a [`FanOutSink`], named for logs and errors.
#[derive(Debug)]
pub struct Target {
    name: String,
    sink: Arc<dyn AuditSink>,
    mode: Mode,
}

impl Target {
    /// A target that takes records as `mode` says.
    pub fn new(name: impl Into<String>, sink: Arc<dyn AuditSink>, mode: Mode) -> Self {
        Self { name: name.into(), sink, mode }
    }
}

enum Active {
    Required { name: String, sink: Arc<dyn AuditSink> },
    Spooled(Arc<Spool>),
}

/// An [`AuditSink`] that gives every record to each of its targets: it succeeds only when every
/// required target took the record and every spool stored it.
pub struct FanOutSink {
    targets: Vec<Active>,
    closed: AtomicBool,
}

impl fmt::Debug for FanOutSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self
            .targets
            .iter()
            .map(|t| match t {
                Active::Required { name, .. } => format!("{name} (required)"),
                Active::Spooled(spool) => format!("{} (spool)", spool.name()),
            })
            .collect();
        f.debug_struct("FanOutSink").field("targets", &names).finish_non_exhaustive()
    }
}

impl FanOutSink {
    /// A sink over `targets`. Opens each spool (replaying what an earlier run left in it) and
    /// starts its forwarder; needs a tokio runtime. Refuses an empty list and two spools in one
    /// directory.
    pub fn new(targets: Vec<Target>) -> Result<Self, SpoolError> {
        if targets.is_empty() {
            return Err(SpoolError::Config("a fan-out needs at least one sink".into()));
        }
        let mut dirs = Vec::new();
        let mut active = Vec::with_capacity(targets.len());
        for Target { name, sink, mode } in targets {
            match mode {
                Mode::Required => active.push(Active::Required { name, sink }),
                Mode::Spool(config) => {
                    if dirs.contains(&config.dir) {
                        return Err(SpoolError::Config(format!(
                            "two spools in `{}`: each spooled sink needs its own directory",
                            config.dir.display()
                        )));
                    }
                    dirs.push(config.dir.clone());
                    active.push(Active::Spooled(Spool::open(name, sink, config)?));
                }
            }
        }
        Ok(Self { targets: active, closed: AtomicBool::new(false) })
    }

    /// Records waiting in each spool to be forwarded, by target name.
    pub fn backlog(&self) -> Vec<(String, u64)> {
        self.targets
            .iter()
            .filter_map(|t| match t {
                Active::Spooled(spool) => Some((spool.name().to_owned(), spool.backlog())),
                Active::Required { .. } => None,
            })
            .collect()
    }

    /// Refuses further appends, makes every spool durable and stops the forwarders (what is
    /// still spooled is forwarded by the next run). Closing the target sinks is up to whoever
    /// opened them.
    pub async fn close(&self) -> Result<(), AuditError> {
        self.closed.store(true, Ordering::SeqCst);
        let mut result = Ok(());
        for target in &self.targets {
            let closed = match target {
                Active::Required { sink, .. } => sink.flush().await,
                Active::Spooled(spool) => spool.close().await,
            };
            if result.is_ok() {
                result = closed;
            }
        }
        result
    }

    fn refuse_if_closed(&self) -> Result<(), AuditError> {
        if self.closed.load(Ordering::SeqCst) { Err(AuditError::Closed) } else { Ok(()) }
    }
}

/// The first error of `results`, named after its target.
fn first_error(results: Vec<(&str, Result<(), AuditError>)>) -> Result<(), AuditError> {
    for (name, result) in results {
        if let Err(e) = result {
            tracing::warn!(target: "zta_audit_fanout", sink = name, error = %e, "audit sink refused a record");
            return Err(match e {
                AuditError::Write(cause) => AuditError::write(format!("sink `{name}`: {cause}")),
                other => AuditError::write(format!("sink `{name}`: {other}")),
            });
        }
    }
    Ok(())
}

#[async_trait]
impl AuditSink for FanOutSink {
    async fn append(&self, record: AuditRecord, durability: Durability) -> Result<(), AuditError> {
        self.refuse_if_closed()?;
        let appends = self.targets.iter().map(|target| {
            let record = record.clone();
            async move {
                match target {
                    Active::Required { name, sink } => (name.as_str(), sink.append(record, durability).await),
                    Active::Spooled(spool) => (spool.name(), spool.append(&record, durability).await),
                }
            }
        });
        first_error(join_all(appends).await)
    }

    async fn flush(&self) -> Result<(), AuditError> {
        let flushes = self.targets.iter().map(|target| async move {
            match target {
                Active::Required { name, sink } => (name.as_str(), sink.flush().await),
                Active::Spooled(spool) => (spool.name(), spool.flush().await),
            }
        });
        first_error(join_all(flushes).await)
    }

    /// Not ready once closed, or while a required sink is not (its refusal would deny every
    /// request); a spooled target being down is what its spool is for.
    async fn ready(&self) -> Result<(), AuditError> {
        self.refuse_if_closed()?;
        let probes = self.targets.iter().filter_map(|target| match target {
            Active::Required { name, sink } => Some(async move { (name.as_str(), sink.ready().await) }),
            Active::Spooled(_) => None,
        });
        for (name, probe) in join_all(probes).await {
            if let Err(e) = probe {
                return Err(match e {
                    AuditError::Write(cause) => AuditError::write(format!("sink `{name}`: {cause}")),
                    other => AuditError::write(format!("sink `{name}`: {other}")),
                });
            }
        }
        Ok(())
    }

    /// What the required sinks have queued, plus what waits in each spool to be forwarded;
    /// `None` when no target keeps a queue.
    fn queued(&self) -> Option<u64> {
        self.targets
            .iter()
            .filter_map(|target| match target {
                Active::Required { sink, .. } => sink.queued(),
                Active::Spooled(spool) => Some(spool.backlog()),
            })
            .reduce(u64::saturating_add)
    }
}

/// Runs `futures` concurrently (so one slow sink does not hold up the others' writes) and
/// returns their outputs in order.
async fn join_all<F: Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut pending: Vec<_> = futures.map(|future| Some(Box::pin(future))).collect();
    let mut outputs: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all_done = true;
        for (slot, output) in pending.iter_mut().zip(outputs.iter_mut()) {
            if let Some(future) = slot {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => {
                        *output = Some(value);
                        *slot = None;
                    }
                    std::task::Poll::Pending => all_done = false,
                }
            }
        }
        if all_done { std::task::Poll::Ready(()) } else { std::task::Poll::Pending }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

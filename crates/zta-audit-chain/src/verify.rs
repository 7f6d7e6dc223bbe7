//! Verifying stored chains: the row-by-row check the SQL sinks' `verify` share.

use std::collections::BTreeMap;

use crate::{GENESIS, link_hash};

/// One writer's chain, as a verification found it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriterReport {
    /// Rows of this writer (its seq runs from 1 to this).
    pub rows: u64,
    /// The hash of its last row (hex): where the chain ends. Keep it elsewhere to detect a
    /// truncated tail later, which the chain alone cannot show.
    pub head: String,
}

/// What a verification found: each writer's chain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Writer id -> its chain.
    pub writers: BTreeMap<String, WriterReport>,
}

impl VerifyReport {
    /// Rows in the store.
    pub fn rows(&self) -> u64 {
        self.writers.values().map(|w| w.rows).sum()
    }
}

/// Where a chain breaks: the writer, the seq at which, and what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBreak {
    /// The writer whose chain breaks.
    pub writer: String,
    /// The seq where it breaks (0 for a negative seq).
    pub seq: u64,
    /// What is wrong there.
    pub reason: String,
}

/// Checks rows read in `(writer, seq)` order, one writer's chain after another: seq without
/// gaps from 1, each `prev_hash` the previous row's `hash` ([`GENESIS`] for seq 1), each
/// `hash` over the stored record text, each record a valid audit record.
#[derive(Debug)]
pub struct OrderedChainCheck {
    domain: &'static [u8],
    report: VerifyReport,
    /// The last row checked: its writer, seq and hash.
    head: Option<(String, u64, [u8; 32])>,
}

impl OrderedChainCheck {
    /// A check of chains hashed with `domain` (the store's tag).
    pub fn new(domain: &'static [u8]) -> Self {
        Self { domain, report: VerifyReport::default(), head: None }
    }

    /// Checks the next row; the first break is an error.
    pub fn row(
        &mut self,
        writer: String,
        seq: i64,
        prev_hash: &[u8],
        hash: &[u8],
        record: &str,
    ) -> Result<(), ChainBreak> {
        let broken = |seq: u64, reason: String| ChainBreak { writer: writer.clone(), seq, reason };
        let seq = u64::try_from(seq).map_err(|_| broken(0, format!("negative seq {seq}")))?;
        let (want_seq, want_prev) = match &self.head {
            Some((w, s, h)) if *w == writer => (s + 1, *h),
            _ => (1, GENESIS),
        };
        if seq != want_seq {
            let what = if want_seq == 1 {
                format!("the chain starts at seq {seq}, not 1: rows before it are missing")
            } else {
                format!("seq {seq} follows {}: rows are missing", want_seq - 1)
            };
            return Err(broken(want_seq, what));
        }
        if prev_hash != want_prev.as_slice() {
            return Err(broken(seq, "prev_hash is not the hash of the row before it".into()));
        }
        let computed = link_hash(self.domain, &writer, seq, &want_prev, record.as_bytes());
        if hash != computed.as_slice() {
            return Err(broken(
                seq,
                "the record does not match its hash (changed after it was written)".into(),
            ));
        }
        if let Err(e) = serde_json::from_str::<zta_core::AuditRecord>(record) {
            return Err(broken(seq, format!("not an audit record: {e}")));
        }
        let entry = self
            .report
            .writers
            .entry(writer.clone())
            .or_insert_with(|| WriterReport { rows: 0, head: String::new() });
        entry.rows += 1;
        entry.head = hex::encode(computed);
        self.head = Some((writer, seq, computed));
        Ok(())
    }

    /// What the rows checked make.
    pub fn finish(self) -> VerifyReport {
        self.report
    }
}

//! Verifying a file: every writer's chain, row by row.

use std::collections::BTreeMap;

use sqlx::{Connection, SqliteConnection};

use crate::{
    Error, SqliteConfig, chain_hash,
    schema::{connect, database},
};

/// One row's chain columns: writer, seq, prev_hash, hash, record.
type Row = (String, i64, Vec<u8>, Vec<u8>, String);

/// Rows read per query while walking the table.
const PAGE: i64 = 2048;

/// One writer's chain, as [`verify`] found it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriterReport {
    /// Rows of this writer (its seq runs from 1 to this).
    pub rows: u64,
    /// The hash of its last row (hex): where the chain ends. Keep it elsewhere to detect a
    /// truncated tail later, which the chain alone cannot show.
    pub head: String,
}

/// What [`verify`] found: each writer's chain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Writer id -> its chain.
    pub writers: BTreeMap<String, WriterReport>,
}

impl VerifyReport {
    /// Rows in the table.
    pub fn rows(&self) -> u64 {
        self.writers.values().map(|w| w.rows).sum()
    }
}

/// Reads every row of the file of `config` and checks each writer's chain: seq without gaps
/// from 1, each `prev_hash` the previous row's `hash` (zero bytes for seq 1), each `hash` over
/// the stored record text, each record a valid audit record. Fails at the first break, naming
/// the writer and seq: an edited, deleted (in the middle), inserted or reordered row. Rows cut
/// from the end of a chain leave a shorter chain that still verifies; compare
/// [`WriterReport::head`] with a copy kept elsewhere to see that. Refuses a missing file
/// (it does not make one).
pub async fn verify(config: &SqliteConfig) -> Result<VerifyReport, Error> {
    let mut conn = connect(config, false).await?;
    let result = walk(&mut conn, config).await;
    let _ = conn.close().await;
    result
}

async fn walk(conn: &mut SqliteConnection, config: &SqliteConfig) -> Result<VerifyReport, Error> {
    let page = format!(
        "SELECT writer_id, seq, prev_hash, hash, record FROM zta_audit \
         WHERE (writer_id, seq) > (?1, ?2) ORDER BY writer_id, seq LIMIT {PAGE}"
    );
    let mut report = VerifyReport::default();
    let mut after = (String::new(), i64::MIN);
    let mut head: Option<(String, u64, [u8; 32])> = None;
    loop {
        let rows: Vec<Row> = sqlx::query_as(&page)
            .bind(&after.0)
            .bind(after.1)
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| database(config, &e))?;
        let Some(last) = rows.last() else { break };
        after = (last.0.clone(), last.1);
        for (writer, seq, prev_hash, hash, record) in rows {
            let broken = |seq: u64, reason: String| Error::Broken {
                path: config.shown_path(),
                writer: writer.clone(),
                seq,
                reason,
            };
            let seq = u64::try_from(seq).map_err(|_| broken(0, format!("negative seq {seq}")))?;
            let (want_seq, want_prev) = match &head {
                Some((w, s, h)) if *w == writer => (s + 1, *h),
                _ => (1, zta_audit_chain::GENESIS),
            };
            if seq != want_seq {
                let what = if want_seq == 1 {
                    format!("the chain starts at seq {seq}, not 1: rows before it are missing")
                } else {
                    format!("seq {seq} follows {}: rows are missing", want_seq - 1)
                };
                return Err(broken(want_seq, what));
            }
            if prev_hash.as_slice() != want_prev.as_slice() {
                return Err(broken(seq, "prev_hash is not the hash of the row before it".into()));
            }
            let computed = chain_hash(&writer, seq, &want_prev, record.as_bytes());
            if hash.as_slice() != computed.as_slice() {
                return Err(broken(
                    seq,
                    "the record does not match its hash (changed after it was written)".into(),
                ));
            }
            if let Err(e) = serde_json::from_str::<zta_core::AuditRecord>(&record) {
                return Err(broken(seq, format!("not an audit record: {e}")));
            }
            let entry = report
                .writers
                .entry(writer.clone())
                .or_insert_with(|| WriterReport { rows: 0, head: String::new() });
            entry.rows += 1;
            entry.head = hex::encode(computed);
            head = Some((writer, seq, computed));
        }
    }
    Ok(report)
}

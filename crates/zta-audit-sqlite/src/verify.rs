//! Verifying a file: every writer's chain, row by row.

use sqlx::{Connection, SqliteConnection};
use zta_audit_chain::{OrderedChainCheck, VerifyReport};

use crate::{
    DOMAIN, Error, SqliteConfig,
    schema::{connect, database},
};

/// One row's chain columns: writer, seq, prev_hash, hash, record.
type Row = (String, i64, Vec<u8>, Vec<u8>, String);

/// Rows read per query while walking the table.
const PAGE: i64 = 2048;

/// Reads every row of the file of `config` and checks each writer's chain: seq without gaps
/// from 1, each `prev_hash` the previous row's `hash` (zero bytes for seq 1), each `hash` over
/// the stored record text, each record a valid audit record. Fails at the first break, naming
/// the writer and seq: an edited, deleted (in the middle), inserted or reordered row. Rows cut
/// from the end of a chain leave a shorter chain that still verifies; compare
/// [`WriterReport::head`](zta_audit_chain::WriterReport::head) with a copy kept elsewhere to see that. Refuses a missing file
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
    let mut check = OrderedChainCheck::new(DOMAIN);
    let mut after = (String::new(), i64::MIN);
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
            check.row(writer, seq, &prev_hash, &hash, &record).map_err(|b| Error::Broken {
                path: config.shown_path(),
                writer: b.writer,
                seq: b.seq,
                reason: b.reason,
            })?;
        }
    }
    Ok(check.finish())
}

//! Verifying a table: every writer's chain, row by row.

use sqlx::{Connection, PgConnection};
use zta_audit_chain::{OrderedChainCheck, VerifyReport};

use crate::{
    DOMAIN, Error, PostgresConfig,
    config::check_table,
    schema::{options, scrub},
};

/// One row's chain columns: writer, seq, prev_hash, hash, record.
type Row = (String, i64, Vec<u8>, Vec<u8>, String);

/// Rows read per query while walking a table.
const PAGE: i64 = 2048;

/// Reads every row of `config.table` and checks each writer's chain: seq without gaps from 1,
/// each `prev_hash` the previous row's `hash` (zero bytes for seq 1), each `hash` over the
/// stored record text, each record a valid audit record. Fails at the first break, naming the
/// writer and seq: an edited, deleted (in the middle), inserted or reordered row. Rows cut
/// from the end of a chain leave a shorter chain that still verifies; compare
/// [`WriterReport::head`](zta_audit_chain::WriterReport::head) with a copy kept elsewhere to see that.
pub async fn verify(config: &PostgresConfig) -> Result<VerifyReport, Error> {
    check_table(&config.table)?;
    let config = &config.resolve()?;
    let database =
        |e: sqlx::Error| Error::Database { url: config.safe_url(), reason: scrub(&e.to_string(), config) };
    let mut conn = PgConnection::connect_with(&options(config)?).await.map_err(database)?;
    let result = walk(&mut conn, config).await;
    let _ = conn.close().await;
    result
}

async fn walk(conn: &mut PgConnection, config: &PostgresConfig) -> Result<VerifyReport, Error> {
    let table = &config.table;
    let database =
        |e: sqlx::Error| Error::Database { url: config.safe_url(), reason: scrub(&e.to_string(), config) };
    // The name passed `check_table`: a plain identifier, safe in SQL text.
    let page = format!(
        "SELECT writer_id, seq, prev_hash, hash, record FROM {table} \
         WHERE (writer_id, seq) > ($1, $2) ORDER BY writer_id, seq LIMIT {PAGE}"
    );
    let mut check = OrderedChainCheck::new(DOMAIN);
    let mut after = (String::new(), i64::MIN);
    loop {
        let rows: Vec<Row> = sqlx::query_as(&page)
            .bind(&after.0)
            .bind(after.1)
            .fetch_all(&mut *conn)
            .await
            .map_err(database)?;
        let Some(last) = rows.last() else { break };
        after = (last.0.clone(), last.1);
        for (writer, seq, prev_hash, hash, record) in rows {
            check.row(writer, seq, &prev_hash, &hash, &record).map_err(|b| Error::Broken {
                table: table.clone(),
                writer: b.writer,
                seq: b.seq,
                reason: b.reason,
            })?;
        }
    }
    Ok(check.finish())
}

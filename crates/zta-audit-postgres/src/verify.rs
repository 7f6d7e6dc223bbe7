//! Verifying a table: every writer's chain, row by row, from its pruned-up-to marker if it has
//! one.

use sqlx::{Connection, PgConnection};
use zta_audit_chain::{ChainBreak, MarkedChainCheck, MarkerReport, PruneMarker, VerifyReport};

use crate::{
    DOMAIN, Error, PostgresConfig,
    config::check_table,
    schema::{options, scrub},
};

/// One row's chain columns: writer, seq, prev_hash, hash, record.
type Row = (String, i64, Vec<u8>, Vec<u8>, String);

/// One marker: writer, seq, hash, key id, signature.
type MarkerRow = (String, i64, Vec<u8>, String, Vec<u8>);

/// Rows read per query while walking the table.
const PAGE: i64 = 2048;

/// Reads every row of `config.table` and checks each writer's chain: seq without gaps
/// from 1, each `prev_hash` the previous row's `hash` (zero bytes for seq 1), each `hash` over
/// the stored record text, each record a valid audit record. Fails at the first break, naming
/// the writer and seq: an edited, deleted (in the middle), inserted or reordered row. Rows cut
/// from the end of a chain leave a shorter chain that still verifies; compare
/// [`WriterReport::head`](zta_audit_chain::WriterReport::head) with a copy kept elsewhere to see that.
///
/// A writer pruned by [`prune`](crate::prune) fails here: its marker's signature needs the
/// public key; use [`verify_with`].
pub async fn verify(config: &PostgresConfig) -> Result<VerifyReport, Error> {
    let (report, markers) = verify_with(config, None).await?;
    if let Some((writer, seq)) = markers.unchecked.iter().next() {
        return Err(Error::Broken {
            table: config.table.clone(),
            writer: writer.clone(),
            seq: *seq,
            reason: "pruned up to here, and the marker's signature was not checked: verify with the \
                     audit checkpoint's public key"
                .into(),
        });
    }
    Ok(report)
}

/// [`verify`], with writers pruned by [`prune`](crate::prune): each such writer's chain starts
/// after its "pruned up to" marker. With `public_key` (the audit checkpoint key's public half)
/// every marker's signature is checked and a forged or changed one is a break; without it the
/// markers are taken on trust and listed as unchecked. Rows that start after seq 1 with no
/// marker are a break. Everything is read from one snapshot, so sinks may write and a prune may
/// run meanwhile.
pub async fn verify_with(
    config: &PostgresConfig,
    public_key: Option<&[u8; 32]>,
) -> Result<(VerifyReport, MarkerReport), Error> {
    check_table(&config.table)?;
    let config = &config.resolve()?;
    let mut conn = PgConnection::connect_with(&options(config)?).await.map_err(|e| database(config, &e))?;
    // One snapshot for the markers and every page of rows: a prune that commits between two
    // reads would otherwise show its rows gone and its marker not yet there, a false break.
    let result = match conn.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").await {
        Ok(mut snapshot) => {
            let result = walk(&mut snapshot, config, public_key).await;
            let _ = snapshot.rollback().await;
            result
        }
        Err(e) => Err(database(config, &e)),
    };
    let _ = conn.close().await;
    result
}

/// The markers of `config.table` (none before migration 3).
pub(crate) async fn read_markers(
    conn: &mut PgConnection,
    config: &PostgresConfig,
) -> Result<Vec<PruneMarker>, Error> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('zta_audit_pruned') IS NOT NULL")
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| database(config, &e))?;
    if !exists {
        return Ok(Vec::new());
    }
    let rows: Vec<MarkerRow> = sqlx::query_as(
        "SELECT writer_id, seq, hash, key_id, signature FROM zta_audit_pruned WHERE audit_table = $1 \
         ORDER BY writer_id",
    )
    .bind(&config.table)
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| database(config, &e))?;
    rows.into_iter()
        .map(|(writer, seq, hash, key_id, signature)| {
            PruneMarker::from_stored(writer, seq, hash, key_id, signature).map_err(|b| broken(config, b))
        })
        .collect()
}

pub(crate) fn broken(config: &PostgresConfig, b: ChainBreak) -> Error {
    Error::Broken { table: config.table.clone(), writer: b.writer, seq: b.seq, reason: b.reason }
}

pub(crate) fn database(config: &PostgresConfig, e: &sqlx::Error) -> Error {
    Error::Database { url: config.safe_url(), reason: scrub(&e.to_string(), config) }
}

async fn walk(
    conn: &mut PgConnection,
    config: &PostgresConfig,
    public_key: Option<&[u8; 32]>,
) -> Result<(VerifyReport, MarkerReport), Error> {
    let markers = read_markers(conn, config).await?;
    let mut check =
        MarkedChainCheck::new(DOMAIN, &config.table, markers, public_key).map_err(|b| broken(config, b))?;
    // The name passed `check_table`: a plain identifier, safe in SQL text.
    let page = format!(
        "SELECT writer_id, seq, prev_hash, hash, record FROM {} \
         WHERE (writer_id, seq) > ($1, $2) ORDER BY writer_id, seq LIMIT {PAGE}",
        config.table
    );
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
            check.row(writer, seq, &prev_hash, &hash, &record).map_err(|b| broken(config, b))?;
        }
    }
    check.finish().map_err(|b| broken(config, b))
}

//! Retention: deleting each writer's rows older than a time, leaving a signed "pruned up to"
//! marker so that its chain still verifies.

use std::collections::BTreeMap;

use sqlx::{Connection, PgConnection};
use time::OffsetDateTime;
use zta_audit_chain::{MarkedChainCheck, MarkerSigner, PruneMarker};

use crate::{
    DOMAIN, Error, PostgresConfig,
    config::check_table,
    schema::{migrate, options},
    verify::{broken, database, read_markers},
};

/// What [`prune`] deleted: writer -> (the seq its chain is now pruned up to, rows deleted).
/// Writers with nothing old enough are not listed.
pub type Pruned = BTreeMap<String, (u64, u64)>;

/// Rows read per query while checking the rows to delete.
const PAGE: i64 = 2048;

/// Deletes, per writer, the rows of `config.table` recorded before `before`: the
/// longest run from the start of its chain (after its marker) whose records are older, never
/// its last row (a sink continuing the chain reads it). The rows are first checked to chain
/// from the writer's marker (or from the start), with the marker's signature checked by
/// `signer`'s public half; a break refuses the prune. Each writer's new marker (the last
/// deleted row's seq and hash) is signed with `signer` and stored in the same transaction as
/// the deletion.
///
/// Migrates first (the markers' table is migration 3). Concurrent sinks may go on appending;
/// two prunes of one table wait for each other.
pub async fn prune(
    config: &PostgresConfig,
    before: OffsetDateTime,
    signer: &MarkerSigner,
) -> Result<Pruned, Error> {
    check_table(&config.table)?;
    let config = &config.resolve()?;
    migrate(config).await?;
    let mut conn = PgConnection::connect_with(&options(config)?).await.map_err(|e| database(config, &e))?;
    let result = prune_on(&mut conn, config, before, signer).await;
    let _ = conn.close().await;
    result
}

/// Per writer: its last seq, and the first seq recorded at or after the cut-off.
type Plan = (String, i64, Option<i64>);

async fn prune_on(
    conn: &mut PgConnection,
    config: &PostgresConfig,
    before: OffsetDateTime,
    signer: &MarkerSigner,
) -> Result<Pruned, Error> {
    let db = |e: sqlx::Error| database(config, &e);
    let cut = before
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| Error::Config(format!("time `{before}` cannot be used: {e}")))?;
    let table = &config.table;
    let mut tx = conn.begin().await.map_err(db)?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(format!("zta-audit-postgres/prune/{table}"))
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    let markers: BTreeMap<String, PruneMarker> =
        read_markers(&mut tx, config).await?.into_iter().map(|m| (m.writer.clone(), m)).collect();
    // The name passed `check_table`: a plain identifier, safe in SQL text.
    let plans: Vec<Plan> = sqlx::query_as(&format!(
        "SELECT writer_id, max(seq), min(seq) FILTER (WHERE time >= $1::timestamptz) FROM {table} GROUP BY writer_id"
    ))
    .bind(&cut)
    .fetch_all(&mut *tx)
    .await
    .map_err(db)?;
    let public = signer.public_key();
    let mut pruned = Pruned::new();
    for (writer, last, first_new) in plans {
        let upto = first_new.unwrap_or(last).min(last) - 1;
        let old = markers.get(&writer).map_or(0, |m| m.seq);
        let (Ok(upto), true) = (u64::try_from(upto), upto > 0) else { continue };
        if upto <= old {
            continue;
        }
        // The rows to delete must chain from the marker (or the start): a prune never signs
        // over a break.
        let marker: Vec<PruneMarker> = markers.get(&writer).cloned().into_iter().collect();
        let mut check =
            MarkedChainCheck::new(DOMAIN, table, marker, Some(&public)).map_err(|b| broken(config, b))?;
        let mut after = i64::MIN;
        let mut hash = Vec::new();
        loop {
            let rows: Vec<(i64, Vec<u8>, Vec<u8>, String)> = sqlx::query_as(&format!(
                "SELECT seq, prev_hash, hash, record FROM {table} WHERE writer_id = $1 AND seq > $2 AND seq <= $3 \
                 ORDER BY seq LIMIT $4"
            ))
            .bind(&writer)
            .bind(after)
            .bind(upto as i64)
            .bind(PAGE)
            .fetch_all(&mut *tx)
            .await
            .map_err(db)?;
            let Some(last_row) = rows.last() else { break };
            after = last_row.0;
            for (seq, prev_hash, row_hash, record) in rows {
                check
                    .row(writer.clone(), seq, &prev_hash, &row_hash, &record)
                    .map_err(|b| broken(config, b))?;
                hash = row_hash;
            }
        }
        let hash = <[u8; 32]>::try_from(hash).map_err(|_| Error::Broken {
            table: table.clone(),
            writer: writer.clone(),
            seq: upto,
            reason: "the row to prune up to is missing".into(),
        })?;
        let marker = signer.sign(DOMAIN, table, &writer, upto, hash);
        sqlx::query(
            "INSERT INTO zta_audit_pruned (audit_table, writer_id, seq, hash, key_id, signature) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (audit_table, writer_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, \
             key_id = excluded.key_id, signature = excluded.signature, pruned_at = now()",
        )
        .bind(table)
        .bind(&writer)
        .bind(upto as i64)
        .bind(marker.hash.to_vec())
        .bind(&marker.key_id)
        .bind(&marker.signature)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        let deleted = sqlx::query(&format!("DELETE FROM {table} WHERE writer_id = $1 AND seq <= $2"))
            .bind(&writer)
            .bind(upto as i64)
            .execute(&mut *tx)
            .await
            .map_err(db)?
            .rows_affected();
        pruned.insert(writer, (upto, deleted));
    }
    tx.commit().await.map_err(db)?;
    Ok(pruned)
}

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
/// the deletion; a writer's rows go in steps of at most 10,000 rows, each its own short
/// transaction.
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
    // The name passed `check_table`: a plain identifier, safe in SQL text.
    let plans: Vec<Plan> = sqlx::query_as(&format!(
        "SELECT writer_id, max(seq), min(seq) FILTER (WHERE time >= $1::timestamptz) FROM {} GROUP BY writer_id",
        config.table
    ))
    .bind(&cut)
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    let mut pruned = Pruned::new();
    for (writer, last, first_new) in plans {
        let Ok(upto) = u64::try_from(first_new.unwrap_or(last).min(last) - 1) else { continue };
        let mut deleted = 0;
        // In steps of at most CHUNK rows, each its own short transaction.
        while let Some(step) = prune_step(conn, config, &writer, upto, signer).await? {
            deleted += step;
        }
        if deleted > 0 {
            pruned.insert(writer, (upto, deleted));
        }
    }
    Ok(pruned)
}

/// Rows deleted per transaction at most.
const CHUNK: u64 = 10_000;

/// Prunes `writer` one step towards `upto`: checks the rows after its marker (at most
/// [`CHUNK`]), moves the marker to the last of them and deletes them, in one transaction.
/// `None` when the writer is pruned up to `upto` already.
async fn prune_step(
    conn: &mut PgConnection,
    config: &PostgresConfig,
    writer: &str,
    upto: u64,
    signer: &MarkerSigner,
) -> Result<Option<u64>, Error> {
    let db = |e: sqlx::Error| database(config, &e);
    let table = &config.table;
    let mut tx = conn.begin().await.map_err(db)?;
    // Two prunes of one table take turns.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(format!("zta-audit-postgres/prune/{table}"))
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    let marker: Vec<PruneMarker> =
        read_markers(&mut tx, config).await?.into_iter().filter(|m| m.writer == writer).collect();
    let old = marker.first().map_or(0, |m| m.seq);
    if upto <= old {
        return Ok(None);
    }
    let step = upto.min(old.saturating_add(CHUNK));
    let signed = |n: u64| i64::try_from(n).map_err(|_| Error::Config(format!("seq {n} is out of range")));
    // The rows to delete must chain from the marker (or the start), its signature checked: a
    // prune never signs over a break.
    let mut check = MarkedChainCheck::new(DOMAIN, table, marker, Some(&signer.public_key()))
        .map_err(|b| broken(config, b))?;
    let mut after = signed(old)?;
    let mut head: Option<(i64, Vec<u8>)> = None;
    loop {
        let rows: Vec<(i64, Vec<u8>, Vec<u8>, String)> = sqlx::query_as(&format!(
            "SELECT seq, prev_hash, hash, record FROM {table} WHERE writer_id = $1 AND seq > $2 AND seq <= $3 \
             ORDER BY seq LIMIT $4"
        ))
        .bind(writer)
        .bind(after)
        .bind(signed(step)?)
        .bind(PAGE)
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        let Some(last_row) = rows.last() else { break };
        after = last_row.0;
        for (seq, prev_hash, row_hash, record) in rows {
            check
                .row(writer.to_owned(), seq, &prev_hash, &row_hash, &record)
                .map_err(|b| broken(config, b))?;
            head = Some((seq, row_hash));
        }
    }
    let hash = match head {
        Some((seq, hash)) if seq == signed(step)? => <[u8; 32]>::try_from(hash).ok(),
        _ => None,
    }
    .ok_or_else(|| Error::Broken {
        table: table.clone(),
        writer: writer.to_owned(),
        seq: step,
        reason: "rows to prune up to here are missing".into(),
    })?;
    let marker = signer.sign(DOMAIN, table, writer, step, hash);
    sqlx::query(
        "INSERT INTO zta_audit_pruned (audit_table, writer_id, seq, hash, key_id, signature) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (audit_table, writer_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, \
         key_id = excluded.key_id, signature = excluded.signature, pruned_at = now()",
    )
    .bind(table)
    .bind(writer)
    .bind(signed(step)?)
    .bind(marker.hash.to_vec())
    .bind(&marker.key_id)
    .bind(&marker.signature)
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    let deleted = sqlx::query(&format!("DELETE FROM {table} WHERE writer_id = $1 AND seq <= $2"))
        .bind(writer)
        .bind(signed(step)?)
        .execute(&mut *tx)
        .await
        .map_err(db)?
        .rows_affected();
    tx.commit().await.map_err(db)?;
    Ok(Some(deleted))
}

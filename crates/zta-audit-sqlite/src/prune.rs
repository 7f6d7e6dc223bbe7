//! Retention: deleting each writer's rows older than a time, leaving a signed "pruned up to"
//! marker so that its chain still verifies.

use std::collections::BTreeMap;

use sqlx::{Connection, SqliteConnection};
use time::OffsetDateTime;
use zta_audit_chain::{MarkedChainCheck, MarkerSigner, PruneMarker};

use crate::{
    DOMAIN, Error, SqliteConfig,
    schema::{connect, database, migrate_on},
    verify::{TABLE, broken, read_markers},
};

/// What [`prune`] deleted: writer -> (the seq its chain is now pruned up to, rows deleted).
/// Writers with nothing old enough are not listed.
pub type Pruned = BTreeMap<String, (u64, u64)>;

/// Rows read per query while checking the rows to delete.
const PAGE: i64 = 2048;

/// Deletes, per writer, the rows of the file of `config` recorded before `before`: the
/// longest run from the start of its chain (after its marker) whose records are older, never
/// its last row (a sink continuing the chain reads it). The rows are first checked to chain
/// from the writer's marker (or from the start), with the marker's signature checked by
/// `signer`'s public half; a break refuses the prune. Each writer's new marker (the last
/// deleted row's seq and hash) is signed with `signer` and stored in the same transaction as
/// the deletion. Refuses a missing file.
pub async fn prune(
    config: &SqliteConfig,
    before: OffsetDateTime,
    signer: &MarkerSigner,
) -> Result<Pruned, Error> {
    let mut conn = connect(config, false).await?;
    let result = async {
        migrate_on(&mut conn, config).await?;
        prune_on(&mut conn, config, before, signer).await
    }
    .await;
    let _ = conn.close().await;
    result
}

/// Per writer: its last seq, and the first seq recorded at or after the cut-off.
type Plan = (String, i64, Option<i64>);

async fn prune_on(
    conn: &mut SqliteConnection,
    config: &SqliteConfig,
    before: OffsetDateTime,
    signer: &MarkerSigner,
) -> Result<Pruned, Error> {
    let db = |e: sqlx::Error| database(config, &e);
    let cut = i64::try_from(before.unix_timestamp_nanos() / 1000)
        .map_err(|_| Error::Config(format!("time `{before}` is out of range")))?;
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(db)?;
    let markers: BTreeMap<String, PruneMarker> =
        read_markers(&mut tx, config).await?.into_iter().map(|m| (m.writer.clone(), m)).collect();
    let plans: Vec<Plan> = sqlx::query_as(
        "SELECT writer_id, max(seq), min(CASE WHEN time >= ?1 THEN seq END) FROM zta_audit GROUP BY writer_id",
    )
    .bind(cut)
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
            MarkedChainCheck::new(DOMAIN, TABLE, marker, Some(&public)).map_err(|b| broken(config, b))?;
        let mut after = i64::MIN;
        let mut hash = Vec::new();
        loop {
            let rows: Vec<(i64, Vec<u8>, Vec<u8>, String)> = sqlx::query_as(
                "SELECT seq, prev_hash, hash, record FROM zta_audit WHERE writer_id = ?1 AND seq > ?2 AND seq <= ?3 \
                 ORDER BY seq LIMIT ?4",
            )
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
            path: config.shown_path(),
            writer: writer.clone(),
            seq: upto,
            reason: "the row to prune up to is missing".into(),
        })?;
        let marker = signer.sign(DOMAIN, TABLE, &writer, upto, hash);
        sqlx::query(
            "INSERT INTO zta_audit_pruned (writer_id, seq, hash, key_id, signature) VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (writer_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, \
             key_id = excluded.key_id, signature = excluded.signature, \
             pruned_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
        )
        .bind(&writer)
        .bind(upto as i64)
        .bind(marker.hash.to_vec())
        .bind(&marker.key_id)
        .bind(&marker.signature)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        let deleted = sqlx::query("DELETE FROM zta_audit WHERE writer_id = ?1 AND seq <= ?2")
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

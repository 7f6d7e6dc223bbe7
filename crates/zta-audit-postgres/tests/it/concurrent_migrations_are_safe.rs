//! Several processes starting at once on an empty database: the migrations and the table are
//! made once, and every `migrate` succeeds. Every table has the query indexes, a table made
//! before an index was added gets it.

use zta_audit_postgres::migrate;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_migrations_are_safe() {
    let db = TestDb::new().await;
    let configs: Vec<_> =
        (0..6).map(|i| db.config(if i % 2 == 0 { "zta_audit" } else { "other_table" })).collect();
    let results = futures_join(configs.into_iter().map(|c| async move { migrate(&c).await })).await;
    let mut applied = Vec::new();
    let mut made = Vec::new();
    for r in results {
        let r = r.unwrap();
        applied.extend(r.applied.into_iter().map(|(v, _)| v));
        made.extend(r.made);
    }
    applied.sort_unstable();
    assert_eq!(applied, [1, 2, 3, 4], "each migration reported once");
    assert_eq!(made, ["table `other_table`"], "the table made once");
    let mut conn = db.connect().await;
    let (applied,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM _sqlx_migrations").fetch_one(&mut conn).await.unwrap();
    assert_eq!(applied, 4);
    for table in ["zta_audit", "other_table"] {
        let (n,): (i64,) =
            sqlx::query_as(&format!("SELECT count(*) FROM {table}")).fetch_one(&mut conn).await.unwrap();
        assert_eq!(n, 0);
    }
    assert_eq!(action_name_indexes(&mut conn, "zta_audit").await, 1);
    assert_eq!(action_name_indexes(&mut conn, "other_table").await, 1);
    // As if `other_table` were made before migration 2.
    let index: String = sqlx::query_scalar(
        "SELECT indexname FROM pg_indexes WHERE tablename = 'other_table' AND indexdef LIKE '%(action_name, %'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    sqlx::query(&format!("DROP INDEX {index}")).execute(&mut conn).await.unwrap();
    assert_eq!(action_name_indexes(&mut conn, "other_table").await, 0);
    let fixed = migrate(&db.config("other_table")).await.unwrap();
    assert!(fixed.applied.is_empty() && fixed.version == 4, "{fixed:?}");
    assert_eq!(fixed.made, ["index on `other_table` (action_name, time)"]);
    let again = migrate(&db.config("other_table")).await.unwrap();
    assert!(again.applied.is_empty() && again.made.is_empty(), "{again:?}");
    assert_eq!(action_name_indexes(&mut conn, "other_table").await, 1);
    drop(conn);
    db.drop().await;
}

/// How many indexes of `table` are on (action_name, time).
async fn action_name_indexes(conn: &mut sqlx::PgConnection, table: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_indexes WHERE tablename = $1 AND indexdef LIKE '%(action_name, \"time\")'",
    )
    .bind(table)
    .fetch_one(conn)
    .await
    .unwrap()
}

use crate::common::TestDb;

/// Runs the futures concurrently, each on a task of its own.
async fn futures_join<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

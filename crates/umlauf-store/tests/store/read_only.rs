use std::str::FromStr;
use std::sync::Arc;

use futures_util::TryStreamExt;
use sqlx::Connection;
use umlauf_store::{Store, StoreError};

use crate::on_both_backends;
use crate::support::{Backend, Scenario, TestDb, check_log};

on_both_backends!(
    a_read_only_store_reads_the_log_and_refuses_appends,
    a_missing_database_is_not_a_log_and_is_not_created,
    a_database_without_the_log_tables_is_not_a_log,
);

fn assert_not_a_log(result: Result<Store, StoreError>) {
    match result {
        Err(error) => assert_eq!(error.code(), "not_a_log", "{error}"),
        Ok(store) => panic!("opened {store:?}"),
    }
}

async fn a_read_only_store_reads_the_log_and_refuses_appends(db: Arc<TestDb>) {
    let store = db.open().await;
    let scenario = Scenario::constituted(store.clone()).await;
    scenario
        .circulation_with_votes(1, "simple-majority", &[("DE", "yes")])
        .await;
    let records = check_log(&store).await;
    let head = store.head().await.unwrap();

    let reader = Store::open_with(db.unsigned_options().read_only())
        .await
        .unwrap();
    assert_eq!(reader.head().await.unwrap(), head);
    let read: Vec<_> = reader.read_from(1).try_collect().await.unwrap();
    assert_eq!(read, records);
    assert_eq!(
        reader.root(head.position).await.unwrap(),
        store.root(head.position).await.unwrap()
    );
    assert_eq!(
        reader.latest_checkpoint().await.unwrap(),
        store.latest_checkpoint().await.unwrap()
    );
    assert_eq!(
        reader
            .circulation(&Scenario::circulation_id(1))
            .await
            .unwrap(),
        store
            .circulation(&Scenario::circulation_id(1))
            .await
            .unwrap()
    );

    // Appending through the reader fails and writes nothing.
    let vote = scenario.decide(&scenario.vote(1, "DE-BE", "no")).await;
    let error = reader.append(vote.clone()).await.unwrap_err();
    assert_eq!(error.code(), "read_only");
    assert!(!error.is_retryable());
    assert_eq!(store.head().await.unwrap(), head);
    // The writing store still appends beside it.
    store.append(vote).await.unwrap();
    assert_eq!(reader.head().await.unwrap().position, head.position + 1);

    // A read-only store signs nothing.
    let signing = Store::open_with(db.options().read_only()).await;
    assert_eq!(signing.unwrap_err().code(), "invalid_config");
}

async fn a_missing_database_is_not_a_log_and_is_not_created(db: Arc<TestDb>) {
    assert_not_a_log(Store::open_with(db.unsigned_options().read_only()).await);
    match db.backend {
        Backend::Sqlite => {
            let options = sqlx::sqlite::SqliteConnectOptions::from_str(&db.url).unwrap();
            assert!(!options.get_filename().exists());
        }
        Backend::Postgres => {
            let mut connection = sqlx::PgConnection::connect(&db.url).await.unwrap();
            let schemas: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1",
            )
            .bind(db.schema.as_deref().unwrap())
            .fetch_one(&mut connection)
            .await
            .unwrap();
            assert_eq!(schemas, 0);
        }
    }
}

async fn a_database_without_the_log_tables_is_not_a_log(db: Arc<TestDb>) {
    match db.backend {
        Backend::Sqlite => {
            let options = sqlx::sqlite::SqliteConnectOptions::from_str(&db.url)
                .unwrap()
                .create_if_missing(true);
            std::fs::create_dir_all(options.get_filename().parent().unwrap()).unwrap();
            let mut connection = sqlx::SqliteConnection::connect_with(&options)
                .await
                .unwrap();
            sqlx::raw_sql("CREATE TABLE unrelated (id INTEGER PRIMARY KEY)")
                .execute(&mut connection)
                .await
                .unwrap();
            connection.close().await.unwrap();
        }
        Backend::Postgres => {
            let schema = db.schema.as_deref().unwrap();
            let mut connection = sqlx::PgConnection::connect(&db.url).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "CREATE SCHEMA {schema}; CREATE TABLE {schema}.unrelated (id int PRIMARY KEY)"
            )))
            .execute(&mut connection)
            .await
            .unwrap();
        }
    }
    assert_not_a_log(Store::open_with(db.unsigned_options().read_only()).await);
    // No migration ran: the log's tables are still missing.
    assert!(db.raw("SELECT position FROM log_head").await.is_err());
}

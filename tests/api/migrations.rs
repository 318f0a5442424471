//! Migrations: every one goes up and down, and what a migration moves is kept.

use diesel::prelude::*;
use otpgate::db::schema::challenges;
use otpgate::db::schema::outbox as outbox_t;
use otpgate::db::{ConnectionManager, DatabaseUrl, DbConnection, migrate, revert_all};

use crate::both;
use crate::support::*;

/// Runs `f` on a connection to a new, empty database of backend `b`.
async fn on_a_new_database(b: Backend, f: impl FnOnce(&mut DbConnection) + Send + 'static) {
    let db = TestDb::new(b);
    let url = db.url.clone();
    tokio::task::spawn_blocking(move || {
        let mut c = ConnectionManager::new(DatabaseUrl::parse(&url).unwrap())
            .establish()
            .unwrap();
        f(&mut c);
    })
    .await
    .unwrap();
}

async fn migrations_go_up_down_and_up_again(b: Backend) {
    on_a_new_database(b, |c| {
        let applied = migrate(c).unwrap();
        assert!(!applied.is_empty());
        assert_eq!(challenges::table.count().get_result::<i64>(c).unwrap(), 0);
        revert_all(c).unwrap();
        assert!(
            challenges::table.count().get_result::<i64>(c).is_err(),
            "tables are gone"
        );
        assert_eq!(migrate(c).unwrap(), applied);
        assert!(migrate(c).unwrap().is_empty(), "nothing left to apply");
        assert_eq!(outbox_t::table.count().get_result::<i64>(c).unwrap(), 0);
    })
    .await;
}

/// A database written when each send was a row of `sends` keeps every send through
/// the migration that moves them into the destinations' rows, and gets them back when
/// the migration is reverted.
async fn sends_move_into_their_destinations_rows_and_back(b: Backend) {
    use diesel::sql_types::{BigInt, Text};
    use diesel_migrations::MigrationHarness;
    use otpgate::db::{POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS};
    #[derive(QueryableByName, Debug, PartialEq)]
    struct Send {
        #[diesel(sql_type = Text)]
        destination_key: String,
        #[diesel(sql_type = BigInt)]
        sent_at: i64,
    }
    fn exec(c: &mut DbConnection, sql: &str) {
        diesel::sql_query(sql).execute(c).unwrap();
    }
    fn revert_one(c: &mut DbConnection) {
        match c {
            DbConnection::Sqlite(c) => c.revert_last_migration(SQLITE_MIGRATIONS).map(|_| ()),
            DbConnection::Pg(c) => c.revert_last_migration(POSTGRES_MIGRATIONS).map(|_| ()),
        }
        .unwrap();
    }
    fn sends(c: &mut DbConnection) -> Vec<Send> {
        let sql = "SELECT destination_key, sent_at FROM sends ORDER BY destination_key, sent_at";
        diesel::sql_query(sql).load(c).unwrap()
    }
    on_a_new_database(b, |c| {
        migrate(c).unwrap();
        revert_one(c);
        // Two sends to "a", whose row exists; one to "b", whose idle row housekeeping
        // had removed.
        exec(
            c,
            "INSERT INTO send_limits (destination_key, last_sent_at) VALUES ('a', 2000)",
        );
        exec(
            c,
            "INSERT INTO sends (id, destination_key, sent_at) \
             VALUES ('1', 'a', 2000), ('2', 'a', 1000), ('3', 'b', 3000)",
        );
        let before = sends(c);
        assert_eq!(migrate(c).unwrap().len(), 1);
        let rows: Vec<(String, i64, String)> = otpgate::db::schema::send_limits::table
            .select((
                otpgate::db::schema::send_limits::destination_key,
                otpgate::db::schema::send_limits::last_sent_at,
                otpgate::db::schema::send_limits::recent_sends,
            ))
            .order(otpgate::db::schema::send_limits::destination_key)
            .load(c)
            .unwrap();
        let rows: Vec<(String, i64, Vec<i64>)> = rows
            .into_iter()
            .map(|(k, last, text)| {
                let mut times: Vec<i64> = text.split(',').map(|t| t.parse().unwrap()).collect();
                times.sort();
                (k, last, times)
            })
            .collect();
        assert_eq!(
            rows,
            [
                ("a".to_string(), 2000, vec![1000, 2000]),
                ("b".to_string(), 3000, vec![3000])
            ]
        );
        revert_one(c);
        assert_eq!(sends(c), before);
    })
    .await;
}

both!(
    migrations_go_up_down_and_up_again,
    sends_move_into_their_destinations_rows_and_back,
);

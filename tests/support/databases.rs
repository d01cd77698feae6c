//! Throwaway databases for queue tests: a SQLite file in a temp folder, or a fresh PostgreSQL
//! database on the local server (dropped afterwards). Under `CI=true` PostgreSQL must be there.

#![allow(dead_code)]

use sqlx::Connection;

pub struct TestDatabase {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    postgres_name: Option<String>,
}

/// The server the PostgreSQL runs use (`PAIRING_WORKER_TEST_PG` to point elsewhere).
pub fn postgres_admin_url() -> String {
    std::env::var("PAIRING_WORKER_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn required() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false")
}

impl TestDatabase {
    pub fn sqlite() -> TestDatabase {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite:{}", dir.path().join("queue.db").display());
        TestDatabase {
            url,
            _dir: Some(dir),
            postgres_name: None,
        }
    }

    /// `None` when no server answers and the run is not under CI (which fails instead).
    pub async fn postgres() -> Option<TestDatabase> {
        let admin = postgres_admin_url();
        let mut conn = match sqlx::PgConnection::connect(&admin).await {
            Ok(conn) => conn,
            Err(error) if !required() => {
                eprintln!("skipping PostgreSQL run: {admin} unreachable ({error}); CI=true makes this a failure");
                return None;
            }
            Err(error) => panic!("PostgreSQL at {admin} is required under CI: {error}"),
        };
        let name = format!("pw_test_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let mut url = url::Url::parse(&admin).expect("admin url");
        url.set_path(&format!("/{name}"));
        Some(TestDatabase {
            url: url.to_string(),
            _dir: None,
            postgres_name: Some(name),
        })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some(name) = self.postgres_name.take() else {
            return;
        };
        // Dropped from a plain thread: the test's runtime may be shutting down.
        let admin = postgres_admin_url();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join();
    }
}

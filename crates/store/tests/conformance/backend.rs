//! The backend factory the conformance suite runs over: each test asks for a fresh, empty,
//! migrated store. A new backend implements [`Backend`] and adds one `suite!` line in
//! `main.rs`.

use async_trait::async_trait;
use ferrocore_core::store::Store;
use std::any::Any;
use std::sync::Arc;

/// A fresh store and whatever keeps it alive (a temporary directory, a throw-away schema).
pub struct Fresh {
    pub store: Arc<dyn Store>,
    pub _keep: Box<dyn Any + Send + Sync>,
}

#[async_trait]
pub trait Backend {
    async fn fresh() -> Fresh;
}

/// The embedded SQLite backend, one database file in a temporary directory.
pub struct Sqlite;

#[async_trait]
impl Backend for Sqlite {
    async fn fresh() -> Fresh {
        let dir = tempfile::tempdir().unwrap();
        let store = ferrocore_store::SqliteStore::open(&dir.path().join("t.db"))
            .await
            .unwrap();
        Fresh {
            store: Arc::new(store),
            _keep: Box::new(dir),
        }
    }
}

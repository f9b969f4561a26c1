use thiserror::Error;

/// Why a store call failed. Driver errors are wrapped so that no `sqlx` type leaks
/// above this crate.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("the database is already initialised")]
    AlreadyInitialized,
    #[error("a unique value is already taken ({0})")]
    Conflict(String),
    #[error("the licence limit is reached")]
    LimitExceeded,
    #[error("the account's last admin key cannot be removed")]
    LastAdminKey,
    #[error("{0} is still referenced")]
    InUse(String),
    #[error("{0} does not exist")]
    MissingReference(String),
    #[error("the published draft cannot be changed")]
    PublishedDraft,
    #[error("a stored row could not be read: {0}")]
    Corrupt(String),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("database error: {0}")]
    Database(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict(db.constraint().unwrap_or("unique").to_string())
            }
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => StoreError::Corrupt(e.to_string()),
            _ => StoreError::Database(Box::new(e)),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Migration(e.to_string())
    }
}

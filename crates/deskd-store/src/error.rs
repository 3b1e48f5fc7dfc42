use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("unsupported database url {0:?}: use sqlite://PATH or postgres://...")]
    BadUrl(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("the write did not settle after {0} attempts")]
    Contention(u32),
    #[error("the store is closed")]
    Closed,
}

impl StoreError {
    /// A uniqueness violation or a serialization failure: the unit lost a race and may be re-run.
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::Db(sqlx::Error::Database(e)) => {
                matches!(e.kind(), sqlx::error::ErrorKind::UniqueViolation)
                    || matches!(e.code().as_deref(), Some("40001" | "40P01"))
            }
            _ => false,
        }
    }

    /// PostgreSQL cancelled a statement that ran past its `statement_timeout` (57014).
    pub fn is_statement_timeout(&self) -> bool {
        matches!(self, StoreError::Db(sqlx::Error::Database(e)) if e.code().as_deref() == Some("57014"))
    }

    /// The database refused what was written (a constraint, a value it cannot store) or the
    /// write kept losing races: trying the same items again alone can succeed or isolate the bad
    /// one. Anything else (connection lost, store closed) is the database's state, not the data's.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            StoreError::Db(sqlx::Error::Database(_))
                | StoreError::Contention(_)
                | StoreError::Corrupt(_)
        )
    }
}

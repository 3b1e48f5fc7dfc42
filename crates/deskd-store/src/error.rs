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
    /// The database cannot be reached now (down, restarting, refusing connections).
    #[error("database unavailable: {0}")]
    Unavailable(String),
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
        ) && !self.is_unavailable()
    }

    /// The database is not there to answer (down, restarting, shutting down, unreachable, or
    /// this process is closing the store): nothing about the request is wrong, and the same
    /// request can succeed later. Answered 503.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Unavailable(_) | StoreError::Closed => true,
            StoreError::Db(e) => match e {
                sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::Protocol(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed => true,
                // Connection exceptions (08…), operator intervention (57P01 admin shutdown,
                // 57P02 crash shutdown, 57P03 cannot connect now), too many connections (53300).
                sqlx::Error::Database(d) => d
                    .code()
                    .is_some_and(|c| c.starts_with("08") || c.starts_with("57P") || c == "53300"),
                _ => false,
            },
            _ => false,
        }
    }
}

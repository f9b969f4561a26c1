use baton_domain::{Problem, Problems};
use baton_store::StoreError;

/// A use case's failure: either problems the client can act on, or an internal
/// fault that is logged with its cause chain and answered with an opaque 500.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    Rejected(Problems),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type EngineResult<T> = Result<T, EngineError>;

/// An internal fault described by `message` (a broken invariant, unreadable stored data).
pub(crate) fn internal(message: String) -> EngineError {
    EngineError::Internal(anyhow::anyhow!(message))
}

impl From<Problem> for EngineError {
    fn from(p: Problem) -> Self {
        EngineError::Rejected(p.into())
    }
}

impl From<Problems> for EngineError {
    fn from(p: Problems) -> Self {
        EngineError::Rejected(p)
    }
}

impl From<Vec<Problem>> for EngineError {
    fn from(p: Vec<Problem>) -> Self {
        EngineError::Rejected(Problems(p))
    }
}

/// Store failures the use case did not expect are internal faults.
impl From<StoreError> for EngineError {
    fn from(e: StoreError) -> Self {
        EngineError::Internal(anyhow::Error::new(e))
    }
}

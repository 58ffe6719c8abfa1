//! Misuse of the auditor: what a caller did wrong, as opposed to what the history did wrong
//! (that is a [`crate::Finding`]).

/// A call the auditor cannot honour.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditError {
    /// A checkpoint arrived after the auditor had passed its size: with a frontier of O(log n)
    /// hashes it only knows the root at the current size. Give checkpoints before the records
    /// they cover, or in size order between them.
    #[error(
        "checkpoint of size {size} arrived after {processed} records had been checked; give checkpoints before the records they cover"
    )]
    CheckpointTooLate {
        /// The checkpoint's size.
        size: u64,
        /// How many records had been checked.
        processed: u64,
    },
    /// A record or checkpoint was pushed after [`crate::Auditor::end_of_log`].
    #[error("the log has already ended")]
    Ended,
}

impl AuditError {
    /// The stable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::CheckpointTooLate { .. } => "checkpoint_too_late",
            Self::Ended => "ended",
        }
    }
}

//! Why a request is refused, and the one place where typed errors become wire codes.
//!
//! [`RequestError::to_reply`] maps every refusal to its stable code (the domain's, the proof
//! crate's and the store's own codes, plus `too_large`, `clock_skew`, `invalid_query`,
//! `not_found`, `busy` and `internal`) and an HTTP-like status. Failures of the service itself are logged here with their
//! detail and reach the caller only as `internal`, never with their text.

use chrono::{DateTime, Utc};
use umlauf_domain::DomainError;
use umlauf_nats::wire::ErrorReply;
use umlauf_proof::ProofError;
use umlauf_store::StoreError;

/// A refused request. Nothing was written for it.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The envelope is larger than the configured limit.
    #[error("the envelope is {size} bytes; at most {limit} are accepted")]
    TooLarge {
        /// The envelope's size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The envelope, its signature or a key is not acceptable.
    #[error(transparent)]
    Proof(#[from] ProofError),
    /// The domain refuses the command.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The store refuses or failed the append or the query.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The command's `issued_at` is too far from the service's clock.
    #[error(
        "issued_at {issued_at} is more than {allowed_seconds} s away from the service's clock ({now})"
    )]
    ClockSkew {
        /// The command's `issued_at`.
        issued_at: DateTime<Utc>,
        /// The service's clock.
        now: DateTime<Utc>,
        /// The allowed difference.
        allowed_seconds: u64,
    },
    /// A query's JSON is not a valid query.
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    /// What a query asks for does not exist (a checkpoint for a size never signed).
    #[error("{0}")]
    NotFound(String),
    /// Concurrent appends kept winning; the command was not recorded.
    #[error("the service is busy; try again")]
    Busy,
    /// The service failed.
    #[error("internal error: {0}")]
    Internal(String),
}

impl RequestError {
    /// The stable code of the refusal.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "too_large",
            Self::Proof(error) => error.code(),
            Self::Domain(DomainError::InvalidEvent { .. }) => "internal",
            Self::Domain(error) => error.code(),
            Self::Store(
                StoreError::CommandIdReused { .. }
                | StoreError::RecordTooLarge { .. }
                | StoreError::OutOfRange(_),
            ) => self.store_code(),
            Self::Store(StoreError::Conflict { .. } | StoreError::ClockBehind { .. })
            | Self::Busy => "busy",
            Self::Store(_) | Self::Internal(_) => "internal",
            Self::ClockSkew { .. } => "clock_skew",
            Self::InvalidQuery(_) => "invalid_query",
            Self::NotFound(_) => "not_found",
        }
    }

    fn store_code(&self) -> &'static str {
        match self {
            Self::Store(error) => error.code(),
            _ => "internal",
        }
    }

    /// The HTTP-like status: 400 bad input, 401 signature or key, 403 not allowed, 404 unknown,
    /// 409 conflict with the log's state, 413 too large, 500 internal, 503 busy.
    pub fn status(&self) -> u16 {
        match self {
            Self::TooLarge { .. } => 413,
            Self::Proof(error) => match error {
                ProofError::BadSignature | ProofError::NoKnownSignature => 401,
                _ => 400,
            },
            Self::Domain(error) => domain_status(error),
            Self::Store(error) => match error {
                StoreError::CommandIdReused { .. } => 409,
                StoreError::RecordTooLarge { .. } => 413,
                StoreError::OutOfRange(_) => 400,
                StoreError::Conflict { .. } | StoreError::ClockBehind { .. } => 503,
                _ => 500,
            },
            Self::ClockSkew { .. } | Self::InvalidQuery(_) => 400,
            Self::NotFound(_) => 404,
            Self::Busy => 503,
            Self::Internal(_) => 500,
        }
    }

    /// The reply for the wire. Internal failures are logged here, with their detail, and go out
    /// as `internal` with a generic message.
    pub fn to_reply(&self) -> ErrorReply {
        let code = self.code();
        if code == "internal" {
            tracing::error!(error = %self, "request failed");
            return ErrorReply::new(
                500,
                code,
                "the service failed; the request was not recorded",
            );
        }
        ErrorReply::new(self.status(), code, &self.to_string())
    }
}

fn domain_status(error: &DomainError) -> u16 {
    use DomainError as E;
    match error {
        E::UnknownKey(_) | E::RevokedKey(_) => 401,
        E::KeyOfAnotherActor { .. } | E::NotGenesis(_) | E::Forbidden { .. } => 403,
        E::NotInElectorate(_) | E::BodyMismatch { .. } => 403,
        E::UnknownBody(_)
        | E::UnknownMember(_)
        | E::UnknownGroup(_)
        | E::UnknownTable(_)
        | E::UnknownCirculation(_) => 404,
        E::BodyExists(_)
        | E::MemberExists(_)
        | E::MemberRetired(_)
        | E::KeyExists(_)
        | E::KeyAlreadyRevoked(_)
        | E::CirculationExists(_)
        | E::CirculationClosed(_)
        | E::DeadlinePassed { .. }
        | E::DeadlineNotReached { .. }
        | E::DeadlineNotLater { .. }
        | E::ProposalMismatch
        | E::VoteChangeNotAllowed(_)
        | E::ObjectionNotAvailable
        | E::AlreadyVoted(_)
        | E::AlreadyObjected(_) => 409,
        E::InvalidCommand(_)
        | E::InvalidWeightTable { .. }
        | E::WeakKey
        | E::InvalidRule(_)
        | E::EmptyElectorate
        | E::ProposalDigestMismatch
        | E::InvalidText { .. } => 400,
        E::InvalidEvent { .. } => 500,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use umlauf_domain::ids::{CirculationId, CommandId, KeyId};

    #[test]
    fn refusals_map_to_codes_and_statuses() {
        let id = CirculationId(uuid::Uuid::nil());
        let cases: Vec<(RequestError, &str, u16)> = vec![
            (
                RequestError::TooLarge { size: 2, limit: 1 },
                "too_large",
                413,
            ),
            (ProofError::BadSignature.into(), "bad_signature", 401),
            (
                ProofError::MalformedEnvelope {
                    reason: String::new(),
                }
                .into(),
                "malformed_envelope",
                400,
            ),
            (
                DomainError::UnknownKey(KeyId([0; 32])).into(),
                "unknown_key",
                401,
            ),
            (
                DomainError::RevokedKey(KeyId([0; 32])).into(),
                "revoked_key",
                401,
            ),
            (
                DomainError::CirculationClosed(id).into(),
                "circulation_closed",
                409,
            ),
            (
                DomainError::UnknownCirculation(id).into(),
                "unknown_circulation",
                404,
            ),
            (
                StoreError::CommandIdReused {
                    command_id: CommandId(uuid::Uuid::nil()),
                }
                .into(),
                "command_id_reused",
                409,
            ),
            (StoreError::Closed.into(), "internal", 500),
            (RequestError::Busy, "busy", 503),
            (
                RequestError::Internal("secret detail".into()),
                "internal",
                500,
            ),
        ];
        for (error, code, status) in cases {
            let reply = error.to_reply();
            assert_eq!(
                (reply.code.as_str(), reply.status),
                (code, status),
                "{error}"
            );
            if code == "internal" {
                assert!(!reply.message.contains("secret"), "{}", reply.message);
            }
        }
    }
}

//! The JSON bodies of the wire contract (`proto/README.md`): submit replies, queries and their
//! answers, decision messages, and error replies.
//!
//! Everything that travels is defined here once, for the service and its clients alike. Parsing
//! is strict: unknown fields are refused, so a misspelt query field is an error, not a silent
//! default.

use std::collections::BTreeMap;

use async_nats::HeaderMap;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use umlauf_domain::body::{Body, BodyMember};
use umlauf_domain::command::WeightTableSpec;
use umlauf_domain::event::{CloseTrigger, Decision, FinalAnswer};
use umlauf_domain::ids::{BodyId, CirculationId, CommandId, GroupId, MemberId, TableName};
use umlauf_domain::read_model::{CirculationState, CirculationStatus, KeyStatus};
use umlauf_domain::rule::{Preset, PresetParams, Tally};
use umlauf_proof::merkle::Hash;
use umlauf_proof::receipt::Receipt;

/// The header holding an error reply's `<code>: <message>` (services API).
pub const ERROR_HEADER: &str = async_nats::service::NATS_SERVICE_ERROR;

/// The header holding an error reply's HTTP-like status (services API).
pub const ERROR_CODE_HEADER: &str = async_nats::service::NATS_SERVICE_ERROR_CODE;

/// The longest message an error reply carries, in characters; longer ones are cut.
const MAX_ERROR_MESSAGE: usize = 1_000;

/// The reply to an accepted command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitReply {
    /// The command's id.
    pub command_id: CommandId,
    /// True when the same command was accepted before: `records` are the first result's and
    /// nothing new was written.
    pub duplicate: bool,
    /// Each record the command caused, as standard base64 of its exact bytes, in position order.
    pub records: Vec<String>,
    /// One receipt per record, in the same order: its position, leaf hash, a signed checkpoint
    /// including it and the inclusion proof. For a duplicate, against the newest checkpoint.
    pub receipts: Vec<Receipt>,
}

impl SubmitReply {
    /// A reply carrying these records' bytes and their receipts.
    pub fn new<'a>(
        command_id: CommandId,
        duplicate: bool,
        records: impl IntoIterator<Item = &'a [u8]>,
        receipts: Vec<Receipt>,
    ) -> Self {
        Self {
            command_id,
            duplicate,
            records: records
                .into_iter()
                .map(|bytes| STANDARD.encode(bytes))
                .collect(),
            receipts,
        }
    }

    /// The records' exact bytes.
    pub fn record_bytes(&self) -> Result<Vec<Vec<u8>>, base64::DecodeError> {
        self.records
            .iter()
            .map(|record| STANDARD.decode(record))
            .collect()
    }

    /// Verifies every receipt with the log key: one per record, each for its record's bytes.
    /// Returns the checkpoint of the last receipt.
    pub fn verify_receipts(
        &self,
        log_key: &umlauf_proof::note::NoteVerifier,
    ) -> Result<umlauf_proof::checkpoint::Checkpoint, ReceiptError> {
        let records = self
            .record_bytes()
            .map_err(|error| ReceiptError::Malformed(error.to_string()))?;
        if records.len() != self.receipts.len() || records.is_empty() {
            return Err(ReceiptError::Malformed(format!(
                "{} records but {} receipts",
                records.len(),
                self.receipts.len()
            )));
        }
        let mut last = None;
        for (record, receipt) in records.iter().zip(&self.receipts) {
            let position = receipt.position;
            last = Some(
                receipt
                    .verify(Some(record), log_key)
                    .map_err(|source| ReceiptError::Invalid { position, source })?,
            );
        }
        last.ok_or_else(|| ReceiptError::Malformed("no receipts".into()))
    }
}

/// Why the receipts of a reply do not verify.
#[derive(Debug, thiserror::Error)]
pub enum ReceiptError {
    /// The reply does not carry one receipt per record.
    #[error("the reply's receipts are malformed: {0}")]
    Malformed(String),
    /// A receipt does not verify with the log key.
    #[error("the receipt of the record at position {position} does not verify: {source}")]
    Invalid {
        /// The record's position, as the receipt names it.
        position: u64,
        /// What failed.
        #[source]
        source: umlauf_proof::ProofError,
    },
}

/// `query.checkpoint`: the newest signed checkpoint, or the one for tree size `size`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointQuery {
    /// The tree size; the newest checkpoint if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

/// The answer to `query.checkpoint`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointReply {
    /// The signed checkpoint note, exactly as signed.
    pub checkpoint: String,
}

/// `query.inclusion`: the inclusion proof of the record at `position` in the tree of `size`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionQuery {
    /// The record's position, from 1.
    pub position: u64,
    /// The tree size.
    pub size: u64,
}

/// The answer to `query.inclusion`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionReply {
    /// The record's position.
    pub position: u64,
    /// The tree size.
    pub size: u64,
    /// The RFC 6962 audit path, from the leaf up, as 64 lowercase hex digits each.
    pub proof: Vec<String>,
}

/// `query.consistency`: the consistency proof from the tree of `old_size` to that of `new_size`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyQuery {
    /// The older tree size.
    pub old_size: u64,
    /// The newer tree size.
    pub new_size: u64,
}

/// The answer to `query.consistency`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyReply {
    /// The older tree size.
    pub old_size: u64,
    /// The newer tree size.
    pub new_size: u64,
    /// The RFC 6962 consistency proof, as 64 lowercase hex digits each.
    pub proof: Vec<String>,
}

/// Hashes as they travel: 64 lowercase hex digits each.
pub fn hashes_to_hex(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(hex::encode).collect()
}

/// Hashes from 64 hex digits each; `None` if any is not a hash.
pub fn hashes_from_hex(hashes: &[String]) -> Option<Vec<Hash>> {
    hashes
        .iter()
        .map(|text| {
            let mut hash = [0_u8; 32];
            hex::decode_to_slice(text, &mut hash).ok()?;
            Some(hash)
        })
        .collect()
}

/// A refusal as it travels: an HTTP-like status in `Nats-Service-Error-Code`, and
/// `<code>: <message>` in `Nats-Service-Error`, with an empty body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message} (status {status})")]
pub struct ErrorReply {
    /// 400 bad input, 401 signature or key, 403 not allowed, 404 unknown, 409 conflict with the
    /// log's state, 413 too large, 500 internal, 503 busy.
    pub status: u16,
    /// The stable machine-readable code, e.g. `bad_signature`.
    pub code: String,
    /// A human-readable message; never internals.
    pub message: String,
}

impl ErrorReply {
    /// An error reply; the message is cut to a header-safe single line.
    pub fn new(status: u16, code: &str, message: &str) -> Self {
        let message: String = message
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(MAX_ERROR_MESSAGE)
            .collect();
        Self {
            status,
            code: code.to_owned(),
            message,
        }
    }

    /// The services API's error value for [`async_nats::service::Request::respond`].
    pub fn to_service_error(&self) -> async_nats::service::error::Error {
        async_nats::service::error::Error {
            status: format!("{}: {}", self.code, self.message),
            code: usize::from(self.status),
        }
    }

    /// Reads an error reply from a reply's headers; `None` if the reply is not an error.
    pub fn from_headers(headers: Option<&HeaderMap>) -> Option<Self> {
        let headers = headers?;
        let text = headers.get(ERROR_HEADER)?.as_str();
        let status = headers
            .get(ERROR_CODE_HEADER)
            .and_then(|value| value.as_str().parse::<u16>().ok())
            .unwrap_or(500);
        let (code, message) = text.split_once(": ").unwrap_or((text, ""));
        Some(Self {
            status,
            code: code.to_owned(),
            message: message.to_owned(),
        })
    }
}

/// `query.circulation`: one circulation's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CirculationQuery {
    /// The circulation.
    pub circulation: CirculationId,
}

/// `query.circulations`: a body's circulations, all or those in one state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CirculationsQuery {
    /// The body.
    pub body: BodyId,
    /// Only circulations in this state; all if absent or null.
    #[serde(default)]
    pub state: Option<CirculationState>,
}

/// `query.inbox`: the open circulations awaiting a member's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboxQuery {
    /// The body.
    pub body: BodyId,
    /// The member.
    pub member: MemberId,
}

/// `query.keys` and `query.body`: one body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BodyQuery {
    /// The body.
    pub body: BodyId,
}

/// The answer to `query.circulations` and `query.inbox`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CirculationsReply {
    /// Their statuses, by deadline.
    pub circulations: Vec<CirculationStatus>,
}

/// The answer to `query.keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysReply {
    /// Every key of the body, active and revoked, in key-id order.
    pub keys: Vec<KeyStatus>,
}

/// The answer to `query.body`: the body as its stream says, without its keys (`query.keys`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BodyView {
    /// The body's id.
    pub body: BodyId,
    /// Its name.
    pub name: String,
    /// Its groups and their names.
    pub groups: BTreeMap<GroupId, String>,
    /// Its members, retired ones included.
    pub members: BTreeMap<MemberId, BodyMember>,
    /// Its weight tables by name and year.
    pub weight_tables: BTreeMap<TableName, BTreeMap<u16, WeightTableSpec>>,
    /// Its presets and their parameters.
    pub presets: BTreeMap<Preset, PresetParams>,
    /// The body stream's version this view reflects.
    pub version: u64,
}

impl BodyView {
    /// The view of a body; `None` if it has not been constituted.
    pub fn of(body: &Body) -> Option<Self> {
        Some(Self {
            body: body.id.clone()?,
            name: body.name.clone(),
            groups: body.groups.clone(),
            members: body.members.clone(),
            weight_tables: body.weight_tables.clone(),
            presets: body.presets.clone(),
            version: body.version,
        })
    }
}

/// One decision, as published on `<root>.v1.decisions.<body>.<circulation>`: what a subscriber
/// needs without reading the log, and the closing record's exact bytes to check it against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionMessage {
    /// The body.
    pub body: BodyId,
    /// The circulation.
    pub circulation: CirculationId,
    /// The circulation's title.
    pub title: String,
    /// The decision.
    pub decision: Decision,
    /// What closed the circulation.
    pub trigger: CloseTrigger,
    /// The tally behind the decision.
    pub tally: Tally,
    /// Every elector's final answer.
    pub answers: BTreeMap<MemberId, FinalAnswer>,
    /// The log position of the `CirculationClosed` record (also the message id).
    pub position: u64,
    /// The record's recording time.
    pub recorded_at: DateTime<Utc>,
    /// Standard base64 of the `CirculationClosed` record's exact bytes.
    pub record: String,
}

impl DecisionMessage {
    /// The record's exact bytes.
    pub fn record_bytes(&self) -> Result<Vec<u8>, base64::DecodeError> {
        STANDARD.decode(&self.record)
    }
}

/// Standard base64, as every byte string on the wire is written.
pub fn encode_base64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_replies_round_trip_through_headers_and_stay_on_one_line() {
        let reply = ErrorReply::new(401, "bad_signature", "bad\r\nsignature");
        assert_eq!(reply.message, "bad  signature");
        let error = reply.to_service_error();
        let mut headers = HeaderMap::new();
        headers.insert(ERROR_HEADER, error.status.as_str());
        headers.insert(ERROR_CODE_HEADER, error.code.to_string().as_str());
        assert_eq!(ErrorReply::from_headers(Some(&headers)), Some(reply));
        assert_eq!(ErrorReply::from_headers(Some(&HeaderMap::new())), None);
        assert_eq!(ErrorReply::from_headers(None), None);
    }

    #[test]
    fn queries_refuse_unknown_fields() {
        assert!(serde_json::from_str::<BodyQuery>(r#"{"body":"it-planungsrat"}"#).is_ok());
        assert!(serde_json::from_str::<BodyQuery>(r#"{"body":"it-planungsrat","x":1}"#).is_err());
        let query: CirculationsQuery =
            serde_json::from_str(r#"{"body":"it-planungsrat","state":null}"#).unwrap();
        assert_eq!(query.state, None);
    }

    #[test]
    fn submit_replies_carry_exact_bytes() {
        let id = CommandId("0b8f2f2e-6a8b-4c1e-9a51-3c2d2f7f9e10".parse().unwrap());
        let reply = SubmitReply::new(id, false, [b"{\"a\":1}".as_slice()], Vec::new());
        assert_eq!(reply.records, ["eyJhIjoxfQ=="]);
        assert_eq!(reply.record_bytes().unwrap(), [b"{\"a\":1}".to_vec()]);
    }
}

//! Commands: what a signer asks the service to do.
//!
//! A command is the payload of a signed DSSE envelope. Its JSON form is flat: the common header
//! (`type`, `command_id`, `body`, `actor`, `issued_at`) beside the command's own fields. Parsing is
//! strict: unknown fields, missing fields and out-of-range values are errors, never ignored.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::ids::{
    Actor, BodyId, Choice, CirculationId, CommandId, GroupId, KeyId, MemberId, ProposalDigest,
    PublicKey, TableName, Weight,
};
use crate::rule::{Preset, PresetParams, Rule};
use crate::stream::StreamId;

/// A command with its header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// Chosen by the client; the service accepts each id once.
    pub command_id: CommandId,
    /// The body the command addresses.
    pub body: BodyId,
    /// Who acts: must be the holder of the signing key.
    pub actor: Actor,
    /// When the signer issued it, by the signer's clock.
    pub issued_at: DateTime<Utc>,
    /// What to do.
    pub action: Action,
}

/// The header fields every command carries beside its `type`.
const HEADER_FIELDS: [&str; 4] = ["command_id", "body", "actor", "issued_at"];

impl Command {
    /// Parses a command payload strictly.
    pub fn from_json(payload: &[u8]) -> Result<Self, DomainError> {
        // Read straight from the bytes where that succeeds; where it does not (including the
        // duplicate fields it refuses but a JSON value keeps the last of), the value-based
        // reading gives the verdict and the error.
        // A vote, by far the most frequent command, is read as clients write it, then as one
        // flat struct: the general form below buffers the fields after the header to find the
        // variant.
        if let Some(vote) = cast_vote_as_written(payload) {
            return Ok(vote.into_command());
        }
        if let Ok(vote) = serde_json::from_slice::<FlatCastVote>(payload) {
            return Ok(vote.into_command());
        }
        // The general form reads `type` from buffered fields, where a variant's index would
        // also name it: it answers only when `type` is text, as the value-based reading needs.
        if serde_json::from_slice::<TypeIsText>(payload).is_ok()
            && let Ok(flat) = serde_json::from_slice::<FlatCommand>(payload)
        {
            return Ok(Self {
                command_id: flat.command_id,
                body: flat.body,
                actor: flat.actor,
                issued_at: flat.issued_at,
                action: flat.action,
            });
        }
        let value: serde_json::Value = serde_json::from_slice(payload)
            .map_err(|error| DomainError::InvalidCommand(error.to_string()))?;
        Self::from_value(value)
    }

    /// Parses an already decoded JSON value strictly.
    pub fn from_value(value: serde_json::Value) -> Result<Self, DomainError> {
        let invalid = |detail: String| DomainError::InvalidCommand(detail);
        let serde_json::Value::Object(mut fields) = value else {
            return Err(invalid("a command must be a JSON object".into()));
        };
        let mut take = |name: &str| {
            fields
                .remove(name)
                .ok_or_else(|| invalid(format!("missing field `{name}`")))
        };
        let command_id = serde_json::from_value(take(HEADER_FIELDS[0])?)
            .map_err(|error| invalid(format!("command_id: {error}")))?;
        let body = serde_json::from_value(take(HEADER_FIELDS[1])?)
            .map_err(|error| invalid(format!("body: {error}")))?;
        let actor = serde_json::from_value(take(HEADER_FIELDS[2])?)
            .map_err(|error| invalid(format!("actor: {error}")))?;
        let issued_at = serde_json::from_value(take(HEADER_FIELDS[3])?)
            .map_err(|error| invalid(format!("issued_at: {error}")))?;
        let action = serde_json::from_value(serde_json::Value::Object(fields))
            .map_err(|error| invalid(error.to_string()))?;
        Ok(Self {
            command_id,
            body,
            actor,
            issued_at,
            action,
        })
    }

    /// The flat JSON form, with the header first.
    pub fn to_value(&self) -> serde_json::Value {
        let mut fields = serde_json::Map::new();
        let action = serde_json::to_value(&self.action).unwrap_or_default();
        let serde_json::Value::Object(action_fields) = action else {
            return serde_json::Value::Object(fields);
        };
        if let Some(kind) = action_fields.get("type") {
            fields.insert("type".into(), kind.clone());
        }
        fields.insert("command_id".into(), self.command_id.0.to_string().into());
        fields.insert("body".into(), self.body.as_str().into());
        fields.insert("actor".into(), self.actor.to_string().into());
        fields.insert(
            "issued_at".into(),
            self.issued_at
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
                .into(),
        );
        for (name, value) in action_fields {
            if name != "type" {
                fields.insert(name, value);
            }
        }
        serde_json::Value::Object(fields)
    }

    /// The compact JSON text of [`Command::to_value`]: what a client signs.
    pub fn to_json(&self) -> String {
        self.to_value().to_string()
    }

    /// The stream this command appends to.
    pub fn stream(&self) -> StreamId {
        match self.action.circulation() {
            Some(circulation) => StreamId::Circulation(circulation),
            None => StreamId::Body(self.body.clone()),
        }
    }

    /// The command's type name, as in its JSON `type` field.
    pub fn type_name(&self) -> &'static str {
        self.action.type_name()
    }
}

/// A command's flat JSON form, read without building a JSON value: the header, and the other
/// fields for [`Action`] (whose variants refuse fields they do not know).
#[derive(Deserialize)]
struct FlatCommand {
    command_id: CommandId,
    body: BodyId,
    actor: Actor,
    issued_at: DateTime<Utc>,
    #[serde(flatten)]
    action: Action,
}

/// A `CastVote` command's flat JSON form: the header and [`CastVote`]'s fields, each once, no
/// other field.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FlatCastVote {
    #[serde(rename = "type")]
    kind: CastVoteType,
    command_id: CommandId,
    body: BodyId,
    actor: Actor,
    issued_at: DateTime<Utc>,
    circulation: CirculationId,
    choice: Choice,
    proposal_sha256: ProposalDigest,
    #[serde(default)]
    statement: Option<String>,
}

impl FlatCastVote {
    fn into_command(self) -> Command {
        let CastVoteType::CastVote = self.kind;
        Command {
            command_id: self.command_id,
            body: self.body,
            actor: self.actor,
            issued_at: self.issued_at,
            action: Action::CastVote(CastVote {
                circulation: self.circulation,
                choice: self.choice,
                proposal_sha256: self.proposal_sha256,
                statement: self.statement,
            }),
        }
    }
}

/// A vote in the form [`Command::to_json`] writes it (keys in sorted order, no spaces) whose
/// strings need no unescaping, read field by field where it lies: `None` for any other text, for
/// the general readers to judge. Where it answers, it answers as [`FlatCastVote`] does: each
/// value is read from its JSON text by the same type.
fn cast_vote_as_written(payload: &[u8]) -> Option<FlatCastVote> {
    let mut rest = payload.strip_prefix(b"{")?;
    let actor = plain_field(&mut rest, b"\"actor\":")?;
    let body = plain_field(&mut rest, b",\"body\":")?;
    let choice = plain_field(&mut rest, b",\"choice\":")?;
    let circulation = plain_field(&mut rest, b",\"circulation\":")?;
    let command_id = plain_field(&mut rest, b",\"command_id\":")?;
    let issued_at = plain_field(&mut rest, b",\"issued_at\":")?;
    let proposal_sha256 = plain_field(&mut rest, b",\"proposal_sha256\":")?;
    // `Command::to_json` writes a missing statement as `null`, which reads as none, too.
    let statement = if let Some(after) = rest.strip_prefix(b",\"statement\":null") {
        rest = after;
        None
    } else if rest.starts_with(b",\"statement\":") {
        Some(plain_field(&mut rest, b",\"statement\":")?)
    } else {
        None
    };
    let kind = plain_field(&mut rest, b",\"type\":")?;
    if rest != b"}" {
        return None;
    }
    // The types that read a string and parse it are given the text, which is the string.
    Some(FlatCastVote {
        kind: serde_json::from_slice(kind).ok()?,
        command_id: serde_json::from_slice(command_id).ok()?,
        body: BodyId::parse(unquoted(body)?).ok()?,
        actor: Actor::parse(unquoted(actor)?).ok()?,
        issued_at: serde_json::from_slice(issued_at).ok()?,
        circulation: serde_json::from_slice(circulation).ok()?,
        choice: serde_json::from_slice(choice).ok()?,
        proposal_sha256: ProposalDigest::parse(unquoted(proposal_sha256)?).ok()?,
        statement: match statement {
            Some(text) => Some(serde_json::from_slice(text).ok()?),
            None => None,
        },
    })
}

/// Steps over `key` and the string after it, which must have no escapes or control characters:
/// that string's JSON text, quotes included.
fn plain_field<'a>(rest: &mut &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let after_key = rest.strip_prefix(key)?;
    let text = after_key.strip_prefix(b"\"")?;
    let length = text
        .iter()
        .position(|&byte| byte == b'"' || byte == b'\\' || byte < 0x20)?;
    if text[length] != b'"' {
        return None;
    }
    let (value, after) = after_key.split_at(length + 2);
    *rest = after;
    Some(value)
}

/// The value of a string's JSON text from [`plain_field`]: its text without the quotes.
fn unquoted(quoted: &[u8]) -> Option<&str> {
    std::str::from_utf8(quoted.get(1..quoted.len().checked_sub(1)?)?).ok()
}

/// A JSON object whose `type` is a string, whatever its other fields.
#[derive(Deserialize)]
struct TypeIsText {
    #[serde(rename = "type")]
    _kind: String,
}

/// The only `type` [`FlatCastVote`] reads.
#[derive(Deserialize)]
enum CastVoteType {
    CastVote,
}

/// What a command asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Action {
    /// Constitute a body (genesis key only).
    ConstituteBody(ConstituteBody),
    /// Admit a member (secretariat).
    AdmitMember(AdmitMember),
    /// Retire a member (secretariat).
    RetireMember(RetireMember),
    /// Set a weight table for a year (secretariat).
    SetWeightTable(WeightTableSpec),
    /// Register a key: a member's by the secretariat, the secretariat's by a genesis key.
    RegisterKey(KeySpec),
    /// Revoke a key: by the secretariat, by the member holding it, or (for secretariat keys) by a
    /// genesis key.
    RevokeKey(RevokeKey),
    /// Open a circulation (secretariat).
    OpenCirculation(OpenCirculation),
    /// Cast, or where the rule allows change, a vote (the member itself).
    CastVote(CastVote),
    /// Object to the written procedure (the member itself).
    ObjectToProcedure(ObjectToProcedure),
    /// Move the deadline later (secretariat).
    ExtendDeadline(ExtendDeadline),
    /// Withdraw the circulation (secretariat).
    WithdrawCirculation(WithdrawCirculation),
}

impl Action {
    /// The circulation the action addresses, if any.
    pub fn circulation(&self) -> Option<CirculationId> {
        match self {
            Self::OpenCirculation(open) => Some(open.circulation),
            Self::CastVote(vote) => Some(vote.circulation),
            Self::ObjectToProcedure(objection) => Some(objection.circulation),
            Self::ExtendDeadline(extend) => Some(extend.circulation),
            Self::WithdrawCirculation(withdraw) => Some(withdraw.circulation),
            Self::ConstituteBody(_)
            | Self::AdmitMember(_)
            | Self::RetireMember(_)
            | Self::SetWeightTable(_)
            | Self::RegisterKey(_)
            | Self::RevokeKey(_) => None,
        }
    }

    /// The type name used in JSON.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::ConstituteBody(_) => "ConstituteBody",
            Self::AdmitMember(_) => "AdmitMember",
            Self::RetireMember(_) => "RetireMember",
            Self::SetWeightTable(_) => "SetWeightTable",
            Self::RegisterKey(_) => "RegisterKey",
            Self::RevokeKey(_) => "RevokeKey",
            Self::OpenCirculation(_) => "OpenCirculation",
            Self::CastVote(_) => "CastVote",
            Self::ObjectToProcedure(_) => "ObjectToProcedure",
            Self::ExtendDeadline(_) => "ExtendDeadline",
            Self::WithdrawCirculation(_) => "WithdrawCirculation",
        }
    }
}

/// Whether a member votes or only advises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberKind {
    /// Has a vote.
    Voting,
    /// Takes part without a vote.
    Advisory,
}

/// A member as constituted or admitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberSpec {
    /// The member's id.
    pub id: MemberId,
    /// Its name, e.g. `Bayern`.
    pub name: String,
    /// Voting or advisory.
    pub kind: MemberKind,
    /// Groups it belongs to.
    #[serde(default)]
    pub groups: BTreeSet<GroupId>,
}

/// A group of members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSpec {
    /// The group's id.
    pub id: GroupId,
    /// Its name, e.g. `Länder`.
    pub name: String,
}

/// A weight table for one year, in integer units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightTableSpec {
    /// The table's name.
    pub table: TableName,
    /// The year it applies from; circulations opened in a year use the newest table of that
    /// year or before.
    pub year: u16,
    /// What one unit means, e.g. `0.00001 %`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Each member's weight.
    pub weights: BTreeMap<MemberId, Weight>,
}

/// A public key to register.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySpec {
    /// Who the key belongs to: a member or the secretariat.
    pub holder: Actor,
    /// The Ed25519 public key.
    pub public_key: PublicKey,
    /// A label, e.g. `CIO` or `deputy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// `ConstituteBody`: the body with everything it starts with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConstituteBody {
    /// The genesis public key that signs this command. It must be one of the deployment's
    /// genesis keys; naming it here lets a verifier check the signature before it trusts
    /// anything else in the command.
    pub genesis_key: PublicKey,
    /// The body's name, e.g. `IT-Planungsrat`.
    pub name: String,
    /// Its groups.
    #[serde(default)]
    pub groups: Vec<GroupSpec>,
    /// Its members.
    pub members: Vec<MemberSpec>,
    /// Its weight tables.
    #[serde(default)]
    pub weight_tables: Vec<WeightTableSpec>,
    /// The rule presets it uses, with their parameters.
    #[serde(default)]
    pub presets: BTreeMap<Preset, PresetParams>,
    /// Initial keys, of the secretariat and of members.
    #[serde(default)]
    pub keys: Vec<KeySpec>,
}

/// `AdmitMember`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdmitMember {
    /// The new member.
    pub member: MemberSpec,
}

/// `RetireMember`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetireMember {
    /// The member retiring.
    pub member: MemberId,
}

/// `RevokeKey`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeKey {
    /// The key to revoke.
    pub key_id: KeyId,
    /// Why, for the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The text being decided on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proposal {
    /// The full text, if circulated inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Where the text is published, if not inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// SHA-256 of the text's UTF-8 bytes: what every vote approves.
    pub sha256: ProposalDigest,
}

/// How the circulation's rule is chosen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum RuleChoice {
    /// A shipped preset; parameters not given come from the body's constitution, then from the
    /// preset's defaults.
    Preset {
        /// The preset.
        preset: Preset,
        /// Parameters overriding the body's.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        params: Option<PresetParams>,
    },
    /// A rule given in full.
    Custom {
        /// The rule.
        rule: Rule,
    },
}

/// `OpenCirculation`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenCirculation {
    /// The new circulation's id, chosen by the client.
    pub circulation: CirculationId,
    /// Its title.
    pub title: String,
    /// The proposal.
    pub proposal: Proposal,
    /// The rule.
    pub rule: RuleChoice,
    /// Votes recorded at or before this instant count.
    pub deadline: DateTime<Utc>,
}

/// `CastVote`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CastVote {
    /// The circulation.
    pub circulation: CirculationId,
    /// Yes, no or abstain.
    pub choice: Choice,
    /// The digest of the text the member approves; must be the circulated one.
    pub proposal_sha256: ProposalDigest,
    /// A statement for the record (Protokollerklärung).
    #[serde(default)]
    pub statement: Option<String>,
}

/// `ObjectToProcedure`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectToProcedure {
    /// The circulation.
    pub circulation: CirculationId,
    /// Why the member refuses the written procedure.
    pub reason: String,
}

/// `ExtendDeadline`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtendDeadline {
    /// The circulation.
    pub circulation: CirculationId,
    /// The new deadline; must be later than the current one.
    pub deadline: DateTime<Utc>,
}

/// `WithdrawCirculation`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WithdrawCirculation {
    /// The circulation.
    pub circulation: CirculationId,
    /// Why it is withdrawn.
    pub reason: String,
}

/// Checks a free-text field: non-empty when required, and not longer than `max` characters.
pub(crate) fn check_text(
    field: &'static str,
    text: &str,
    max: usize,
    required: bool,
) -> Result<(), DomainError> {
    if required && text.trim().is_empty() {
        return Err(DomainError::InvalidText {
            field,
            detail: "must not be empty".into(),
        });
    }
    if text.chars().count() > max {
        return Err(DomainError::InvalidText {
            field,
            detail: format!("must not be longer than {max} characters"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const VOTE: &str = r#"{"type":"CastVote","command_id":"0b8f2f2e-6a8b-4c1e-9a51-3c2d2f7f9e10","body":"it-planungsrat","actor":"DE-BY","issued_at":"2026-03-02T09:30:00Z","circulation":"5f0c3a86-1b7e-4d59-8a3e-0c7b1d2e4f60","choice":"yes","proposal_sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","statement":null}"#;

    #[test]
    fn a_vote_as_written_reads_as_the_flat_struct_reads_it() {
        let written = Command::from_json(VOTE.as_bytes()).unwrap().to_json();
        let with_statement =
            written.replace("\"statement\":null", "\"statement\":\"Protokollerklärung\"");
        let without_statement = written.replace(",\"statement\":null", "");
        for (text, answered) in [
            (written.clone(), true),
            (with_statement.clone(), true),
            (without_statement, true),
            (with_statement.replace("ärung", "\\u00e4rung"), false),
            (written.replace("DE-BY", "de-by"), false),
            (written.replace("\"yes\"", "\"maybe\""), false),
            (written.replace("09:30:00Z", "10:30:00+01:00"), true),
            (
                written.replace(
                    "0b8f2f2e-6a8b-4c1e-9a51-3c2d2f7f9e10",
                    "0B8F2F2E6A8B4C1E9A513C2D2F7F9E10",
                ),
                true,
            ),
            (
                written.replace("\"type\":\"CastVote\"", "\"type\":\"ObjectToProcedure\""),
                false,
            ),
            (written.replace("{\"actor\"", "{ \"actor\""), false),
            (written.replace("}", ",\"x\":1}"), false),
            (format!("{written} "), false),
        ] {
            let fast = cast_vote_as_written(text.as_bytes()).map(FlatCastVote::into_command);
            assert_eq!(fast.is_some(), answered, "{text}");
            if let Some(fast) = fast {
                let general = serde_json::from_slice::<FlatCastVote>(text.as_bytes())
                    .unwrap()
                    .into_command();
                assert_eq!(fast, general, "{text}");
                assert_eq!(Command::from_json(text.as_bytes()).unwrap(), general);
            }
        }
    }

    #[test]
    fn a_vote_parses_and_round_trips() {
        let command = Command::from_json(VOTE.as_bytes()).unwrap();
        assert_eq!(command.type_name(), "CastVote");
        assert_eq!(command.actor.to_string(), "DE-BY");
        assert!(matches!(command.stream(), StreamId::Circulation(_)));
        let again = Command::from_json(command.to_json().as_bytes()).unwrap();
        assert_eq!(again, command);
    }

    #[test]
    fn unknown_fields_and_bad_values_are_refused() {
        let mut value: serde_json::Value = serde_json::from_str(VOTE).unwrap();
        value["extra"] = true.into();
        assert!(Command::from_value(value).is_err());

        for (field, bad) in [
            ("choice", serde_json::json!("maybe")),
            ("actor", serde_json::json!("de-by")),
            ("type", serde_json::json!("CastBallot")),
            ("issued_at", serde_json::json!("yesterday")),
            ("proposal_sha256", serde_json::json!("00")),
            ("command_id", serde_json::json!(7)),
        ] {
            let mut value: serde_json::Value = serde_json::from_str(VOTE).unwrap();
            value[field] = bad;
            let error = Command::from_value(value).unwrap_err();
            assert_eq!(error.code(), "invalid_command", "{field}");
        }
        for field in ["type", "command_id", "body", "actor", "issued_at", "choice"] {
            let mut value: serde_json::Value = serde_json::from_str(VOTE).unwrap();
            value.as_object_mut().unwrap().remove(field);
            assert!(Command::from_value(value).is_err(), "{field}");
        }
    }

    #[test]
    fn reading_from_bytes_agrees_with_reading_from_a_value() {
        let payloads = [
            VOTE.to_owned(),
            VOTE.replace(r#""statement":null"#, r#""statement":"f\u00fcr""#),
            VOTE.replace(r#","statement":null"#, ""),
            VOTE.replace(r#""statement":null"#, r#""statement":null,"extra":1"#),
            VOTE.replace(r#""statement":null"#, r#""statement":null,"actor":"DE-BE""#),
            VOTE.replace(r#""statement":null"#, r#""statement":null,"choice":"no""#),
            VOTE.replace(r#""statement":null"#, r#""statement":null,"type":"CastVote""#),
            VOTE.replace(r#""type":"CastVote","#, ""),
            VOTE.replace(r#""type":"CastVote","#, r#""type":"ObjectToProcedure","#),
            VOTE.replace(r#""type":"CastVote","#, r#""type":"castvote","#),
            VOTE.replace(r#""type":"CastVote","#, r#""type":7,"#),
            VOTE.replace(r#""type":"CastVote","#, r#""type":null,"#),
            VOTE.replace(r#""type":"CastVote","#, "")
                .replace(r#""statement":null"#, r#""statement":null,"type":"CastVote""#),
            VOTE.replace(r#""statement":null"#, r#""statement":"a\"b\n""#),
            VOTE.replace(r#""statement":null"#, r#""statement":7"#),
            VOTE.replace(r#""choice":"yes""#, r#""choice":"abstain""#),
            VOTE.replace(r#""choice":"yes""#, r#""choice":"maybe""#),
            VOTE.replace(r#""choice":"yes","#, ""),
            VOTE.replace(r#""choice":"yes","#, r#""choice":"yes","choice":"no","#),
            VOTE.replace(r#""circulation":"5f0c3a86-1b7e-4d59-8a3e-0c7b1d2e4f60","#, ""),
            VOTE.replace(r#""issued_at":"2026-03-02T09:30:00Z""#, r#""issued_at":"2026-03-02T10:30:00+01:00""#),
            VOTE.replace(r#""proposal_sha256":"9f86"#, r#""proposal_sha256":"9F86"#),
            VOTE.replace(r#""actor":"DE-BY","#, ""),
            VOTE.replace("{", "[").replace("}", "]"),
            r#"["0b8f2f2e-6a8b-4c1e-9a51-3c2d2f7f9e10","it-planungsrat","DE-BY","2026-03-02T09:30:00Z"]"#.to_owned(),
            "7".to_owned(),
        ];
        for payload in payloads {
            let from_value = serde_json::from_slice(payload.as_bytes())
                .map_err(|error| DomainError::InvalidCommand(error.to_string()))
                .and_then(Command::from_value);
            assert_eq!(
                Command::from_json(payload.as_bytes()),
                from_value,
                "{payload}"
            );
        }
    }
}

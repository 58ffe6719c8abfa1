//! Identifiers and small value types of the domain.
//!
//! Every type here validates on construction and on deserialisation, so a value that exists is a
//! valid one: a `MemberId` is always ISO 3166-2 shaped, a `Fraction` never has a zero denominator.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

/// Why a value could not be turned into one of the value types of this module.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind}: {detail}")]
pub struct InvalidValue {
    /// Which kind of value was expected, e.g. `member id`.
    pub kind: &'static str,
    /// What was wrong with it.
    pub detail: String,
}

impl InvalidValue {
    fn new(kind: &'static str, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
        }
    }
}

/// Implements `Display`, `FromStr`, `Serialize` and `Deserialize` for a string newtype whose
/// constructor `parse` validates with its `check`.
macro_rules! string_value {
    ($name:ident) => {
        impl $name {
            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = InvalidValue;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Self::parse(text)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                // As `parse` judges it, keeping the text read rather than copying it.
                Self::check(&text).map_err(serde::de::Error::custom)?;
                Ok(Self(text))
            }
        }
    };
}

/// Lower-case slug: `[a-z0-9]` then up to 62 of `[a-z0-9-]`.
fn check_slug(kind: &'static str, text: &str) -> Result<(), InvalidValue> {
    let mut chars = text.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !first_ok || !rest_ok || text.len() > 63 {
        return Err(InvalidValue::new(
            kind,
            format!(
                "{text:?} must be 1 to 63 characters of a-z, 0-9 and '-', starting with a letter or digit"
            ),
        ));
    }
    Ok(())
}

/// A deciding body, e.g. `it-planungsrat`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BodyId(String);

impl BodyId {
    /// Validates a body id: a lower-case slug of at most 63 characters.
    pub fn parse(text: &str) -> Result<Self, InvalidValue> {
        Self::check(text)?;
        Ok(Self(text.to_owned()))
    }

    fn check(text: &str) -> Result<(), InvalidValue> {
        check_slug("body id", text)
    }
}
string_value!(BodyId);

/// A group of members within a body, e.g. `laender`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupId(String);

impl GroupId {
    /// Validates a group id: a lower-case slug of at most 63 characters.
    pub fn parse(text: &str) -> Result<Self, InvalidValue> {
        Self::check(text)?;
        Ok(Self(text.to_owned()))
    }

    fn check(text: &str) -> Result<(), InvalidValue> {
        check_slug("group id", text)
    }
}
string_value!(GroupId);

/// The name of a weight table, e.g. `koenigstein`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TableName(String);

impl TableName {
    /// Validates a table name: a lower-case slug of at most 63 characters.
    pub fn parse(text: &str) -> Result<Self, InvalidValue> {
        Self::check(text)?;
        Ok(Self(text.to_owned()))
    }

    fn check(text: &str) -> Result<(), InvalidValue> {
        check_slug("weight table name", text)
    }
}
string_value!(TableName);

/// A member with a seat, in ISO 3166-2 style: `DE`, `DE-BY`, `FR`, or for bodies of persons
/// any upper-case code such as `BOARD-07`.
///
/// Shape: one to four segments of 1 to 8 characters `A-Z0-9` joined by `-`, the first starting
/// with a letter.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MemberId(String);

impl MemberId {
    /// Validates a member id.
    pub fn parse(text: &str) -> Result<Self, InvalidValue> {
        Self::check(text)?;
        Ok(Self(text.to_owned()))
    }

    fn check(text: &str) -> Result<(), InvalidValue> {
        let segment_ok = |s: &str| {
            (1..=8).contains(&s.len())
                && s.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        };
        let starts_with_letter = text.chars().next().is_some_and(|c| c.is_ascii_uppercase());
        let segments_ok = text.split('-').count() <= 4 && text.split('-').all(segment_ok);
        if !segments_ok || !starts_with_letter {
            return Err(InvalidValue::new(
                "member id",
                format!(
                    "{text:?} must look like DE or DE-BY (upper-case letters and digits, segments joined by '-')"
                ),
            ));
        }
        Ok(())
    }
}
string_value!(MemberId);

/// Who acts in a command or holds a key: a member, the body's secretariat, or a genesis key
/// (a trust anchor of the deployment, configured out of band).
///
/// JSON form: the member id, or the literal strings `"secretariat"` and `"genesis"`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Actor {
    /// A member acting for itself.
    Member(MemberId),
    /// The body's secretariat (Geschäftsstelle).
    Secretariat,
    /// A genesis key of the deployment.
    Genesis,
}

impl Actor {
    /// Parses the JSON text form.
    pub fn parse(text: &str) -> Result<Self, InvalidValue> {
        Self::from_text(std::borrow::Cow::Borrowed(text))
    }

    /// [`Actor::parse`], keeping an owned text for the member id rather than copying it.
    fn from_text(text: std::borrow::Cow<'_, str>) -> Result<Self, InvalidValue> {
        match &*text {
            "secretariat" => Ok(Self::Secretariat),
            "genesis" => Ok(Self::Genesis),
            _ => match MemberId::check(&text) {
                Ok(()) => Ok(Self::Member(MemberId(text.into_owned()))),
                Err(_) => Err(InvalidValue::new(
                    "actor",
                    format!("{text:?} is neither a member id, \"secretariat\" nor \"genesis\""),
                )),
            },
        }
    }

    /// The member, if the actor is one.
    pub fn member(&self) -> Option<&MemberId> {
        match self {
            Self::Member(member) => Some(member),
            _ => None,
        }
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Member(member) => f.write_str(member.as_str()),
            Self::Secretariat => f.write_str("secretariat"),
            Self::Genesis => f.write_str("genesis"),
        }
    }
}

impl Serialize for Actor {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Actor {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::from_text(std::borrow::Cow::Owned(text)).map_err(serde::de::Error::custom)
    }
}

/// One circulation (Umlaufverfahren); the id is chosen by the client that opens it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CirculationId(pub Uuid);

impl fmt::Display for CirculationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A client-chosen command id; the service accepts each id once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CommandId(pub Uuid);

impl fmt::Display for CommandId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Parses exactly 64 lower-case hex digits.
fn parse_hex32(kind: &'static str, text: &str) -> Result<[u8; 32], InvalidValue> {
    let invalid = || InvalidValue::new(kind, format!("{text:?} must be 64 lower-case hex digits"));
    if text.len() != 64 {
        return Err(invalid());
    }
    let mut bytes = [0u8; 32];
    for (byte, pair) in bytes.iter_mut().zip(text.as_bytes().chunks(2)) {
        let digit = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        match (
            pair.first().copied().and_then(digit),
            pair.get(1).copied().and_then(digit),
        ) {
            (Some(high), Some(low)) => *byte = (high << 4) | low,
            _ => return Err(invalid()),
        }
    }
    Ok(bytes)
}

fn write_hex(bytes: &[u8; 32], f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.write_str(hex32_text(bytes).as_str())
}

/// 32 bytes as 64 lower-case hex digits, written in one piece.
struct Hex32Text([u8; 64]);

impl Hex32Text {
    fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever written into it.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

fn hex32_text(bytes: &[u8; 32]) -> Hex32Text {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = [0_u8; 64];
    for (pair, byte) in text.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(byte >> 4)];
        pair[1] = DIGITS[usize::from(byte & 0x0f)];
    }
    Hex32Text(text)
}

/// Implements text and serde forms for a 32-byte value written as lower-case hex.
macro_rules! hex32_value {
    ($name:ident, $kind:literal) => {
        impl $name {
            /// Parses 64 lower-case hex digits.
            pub fn parse(text: &str) -> Result<Self, InvalidValue> {
                parse_hex32($kind, text).map(Self)
            }

            /// The raw 32 bytes.
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_hex(&self.0, f)
            }
        }

        impl FromStr for $name {
            type Err = InvalidValue;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Self::parse(text)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(hex32_text(&self.0).as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                Self::parse(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

/// The SHA-256 of a proposal's text: what a member approves when it votes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProposalDigest(pub [u8; 32]);
hex32_value!(ProposalDigest, "proposal digest");

/// A key id: the lower-case hex SHA-256 of a raw Ed25519 public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(pub [u8; 32]);
hex32_value!(KeyId, "key id");

/// A raw Ed25519 public key, written as standard base64 in JSON.
///
/// The domain only stores and compares keys; curve arithmetic lives in `umlauf-proof`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    /// Whether this encoding decompresses to a point of small order: such a key verifies
    /// signatures that nobody had to forge, so it is refused at registration.
    pub fn is_small_order(&self) -> bool {
        crate::weak_keys::SMALL_ORDER_ENCODINGS.contains(&self.0)
    }

    /// Parses standard (padded) base64 of exactly 32 bytes.
    pub fn parse(text: &str) -> Result<Self, InvalidValue> {
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|_| InvalidValue::new("public key", "must be standard base64"))?;
        let raw: [u8; 32] = bytes
            .try_into()
            .map_err(|_| InvalidValue::new("public key", "must be 32 bytes"))?;
        Ok(Self(raw))
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use base64::Engine as _;
        f.write_str(&base64::engine::general_purpose::STANDARD.encode(self.0))
    }
}

impl Serialize for PublicKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A member's answer to a proposal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Choice {
    /// Zustimmung.
    Yes,
    /// Ablehnung.
    No,
    /// Enthaltung.
    Abstain,
}

impl Choice {
    /// All choices, in a fixed order.
    pub const ALL: [Choice; 3] = [Choice::Yes, Choice::No, Choice::Abstain];
}

impl fmt::Display for Choice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Yes => "yes",
            Self::No => "no",
            Self::Abstain => "abstain",
        })
    }
}

/// An exact, non-negative integer weight: votes in the Bundesrat, or a Königstein share in units
/// of 0.00001 %.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Weight(pub u64);

/// An exact fraction `numerator / denominator` with `0 <= numerator <= denominator` and a
/// positive denominator, written `"2/3"` in JSON.
///
/// Comparisons cross-multiply in 128-bit integers and are therefore exact: `2/3` is met by a
/// share of exactly two thirds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fraction {
    numerator: u64,
    denominator: u64,
}

impl Fraction {
    /// Builds a fraction between 0 and 1 inclusive.
    pub fn new(numerator: u64, denominator: u64) -> Result<Self, InvalidValue> {
        if denominator == 0 || numerator > denominator {
            return Err(InvalidValue::new(
                "fraction",
                format!(
                    "{numerator}/{denominator} must have 0 <= numerator <= denominator and denominator > 0"
                ),
            ));
        }
        Ok(Self {
            numerator,
            denominator,
        })
    }

    /// The numerator.
    pub fn numerator(&self) -> u64 {
        self.numerator
    }

    /// The denominator.
    pub fn denominator(&self) -> u64 {
        self.denominator
    }

    /// Whether `part / whole >= self`, exactly, for `part` and `whole` below 2^64 (sums of `u64`
    /// weights within `u64`). The comparison is `part × denominator >= whole × numerator`, so a
    /// zero `whole` meets every fraction: callers decide what an empty base means.
    pub fn is_met_by(&self, part: u128, whole: u128) -> bool {
        part * u128::from(self.denominator) >= whole * u128::from(self.numerator)
    }

    /// Whether `part / whole > self`, exactly, for `part` and `whole` below 2^64. The comparison
    /// is `part × denominator > whole × numerator`, so a zero `whole` never exceeds a fraction.
    pub fn is_exceeded_by(&self, part: u128, whole: u128) -> bool {
        part * u128::from(self.denominator) > whole * u128::from(self.numerator)
    }
}

impl fmt::Display for Fraction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.numerator, self.denominator)
    }
}

impl FromStr for Fraction {
    type Err = InvalidValue;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidValue::new("fraction", format!("{text:?} must look like 2/3"));
        let (numerator, denominator) = text.split_once('/').ok_or_else(invalid)?;
        let parse = |digits: &str| {
            if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
                return None;
            }
            digits.parse::<u64>().ok()
        };
        let numerator = parse(numerator).ok_or_else(invalid)?;
        let denominator = parse(denominator).ok_or_else(invalid)?;
        Self::new(numerator, denominator)
    }
}

impl Serialize for Fraction {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Fraction {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_values_write_every_byte_as_two_lower_case_digits() {
        let bytes: [u8; 32] =
            std::array::from_fn(|index| u8::try_from(index * 37 % 256).unwrap_or(0) ^ 0xa5);
        let expected: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
        let digest = ProposalDigest(bytes);
        assert_eq!(digest.to_string(), expected);
        assert_eq!(
            serde_json::to_string(&digest).unwrap(),
            format!("\"{expected}\"")
        );
        assert_eq!(
            serde_json::to_value(digest).unwrap(),
            serde_json::Value::String(expected.clone())
        );
        assert_eq!(ProposalDigest::parse(&expected).unwrap(), digest);
        assert_eq!(ProposalDigest([0; 32]).to_string(), "0".repeat(64));
        assert_eq!(ProposalDigest([0xff; 32]).to_string(), "f".repeat(64));
    }

    #[test]
    fn member_ids_follow_iso_3166_2() {
        for good in ["DE", "DE-BY", "DE-NW", "FR", "BOARD-07"] {
            assert!(MemberId::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "de",
            "DE-",
            "-DE",
            "DE--BY",
            "DE BY",
            "1DE",
            "DE-BAYERNXXX",
        ] {
            assert!(MemberId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn actors_parse_from_their_json_text() {
        assert_eq!(Actor::parse("secretariat"), Ok(Actor::Secretariat));
        assert_eq!(Actor::parse("genesis"), Ok(Actor::Genesis));
        assert!(matches!(Actor::parse("DE-BY"), Ok(Actor::Member(_))));
        assert!(Actor::parse("Secretariat").is_err());
    }

    #[test]
    fn fractions_compare_exactly() {
        let two_thirds: Fraction = "2/3".parse().unwrap();
        assert!(two_thirds.is_met_by(2, 3));
        assert!(two_thirds.is_met_by(20, 30));
        assert!(!two_thirds.is_met_by(19, 30));
        assert!(!two_thirds.is_exceeded_by(2, 3));
        assert!(two_thirds.is_exceeded_by(21, 30));
        for bad in ["3/2", "1/0", "a/3", "2/", "-1/3", "2 /3", "+2/3"] {
            assert!(bad.parse::<Fraction>().is_err(), "{bad}");
        }
    }

    #[test]
    fn digests_are_lower_case_hex() {
        let text = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        let digest = ProposalDigest::parse(text).unwrap();
        assert_eq!(digest.to_string(), text);
        assert!(ProposalDigest::parse(&text.to_uppercase()).is_err());
        assert!(ProposalDigest::parse(&text[..62]).is_err());
    }
}

//! Stream names: one stream per body and one per circulation.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use crate::ids::{BodyId, CirculationId, InvalidValue};

/// The stream a record belongs to: `body/<id>` or `circulation/<uuid>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StreamId {
    /// A body's constitution, members, weight tables and keys.
    Body(BodyId),
    /// One circulation.
    Circulation(CirculationId),
}

impl StreamId {
    /// Parses `body/<id>` or `circulation/<uuid>` (lower-case hyphenated).
    pub fn parse(text: &str) -> Result<Self, InvalidValue> {
        let invalid = || InvalidValue {
            kind: "stream",
            detail: format!("{text:?} must be body/<id> or circulation/<uuid>"),
        };
        match text.split_once('/') {
            Some(("body", id)) => BodyId::parse(id).map(Self::Body).map_err(|_| invalid()),
            Some(("circulation", id)) => {
                let uuid = Uuid::parse_str(id).map_err(|_| invalid())?;
                // Only the canonical spelling, so one stream has one name.
                if uuid.hyphenated().encode_lower(&mut Uuid::encode_buffer()) != id {
                    return Err(invalid());
                }
                Ok(Self::Circulation(CirculationId(uuid)))
            }
            _ => Err(invalid()),
        }
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Body(body) => write!(f, "body/{body}"),
            Self::Circulation(circulation) => write!(f, "circulation/{circulation}"),
        }
    }
}

impl FromStr for StreamId {
    type Err = InvalidValue;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl Serialize for StreamId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for StreamId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names_round_trip_and_refuse_others() {
        for good in [
            "body/it-planungsrat",
            "circulation/5f0c3a86-1b7e-4d59-8a3e-0c7b1d2e4f60",
        ] {
            assert_eq!(StreamId::parse(good).unwrap().to_string(), good);
        }
        for bad in [
            "",
            "body/",
            "body/IT",
            "circulation/5F0C3A86-1B7E-4D59-8A3E-0C7B1D2E4F60",
            "circulation/5f0c3a861b7e4d598a3e0c7b1d2e4f60",
            "member/DE",
            "body/a/b",
        ] {
            assert!(StreamId::parse(bad).is_err(), "{bad}");
        }
    }
}

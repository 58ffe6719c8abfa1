//! Whatever bytes or JSON reach the parsers, they answer with a value or an error, never a panic.

use proptest::prelude::*;
use serde_json::{Value, json};
use umlauf_domain::{Command, Event, Record};

/// Arbitrary JSON, nested a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
        prop_oneof![
            Just("CastVote"),
            Just("OpenCirculation"),
            Just("ConstituteBody"),
            Just("yes"),
            Just("DE-BY"),
            Just("secretariat"),
            Just("2026-03-02T09:30:00Z"),
            Just("5f0c3a86-1b7e-4d59-8a3e-0c7b1d2e4f60"),
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("type".to_owned()),
                    Just("command_id".to_owned()),
                    Just("body".to_owned()),
                    Just("actor".to_owned()),
                    Just("circulation".to_owned()),
                    Just("choice".to_owned()),
                    "[a-z_]{1,10}",
                ],
                inner,
                0..8
            )
            .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

const VOTE: &str = r#"{"type":"CastVote","command_id":"0b8f2f2e-6a8b-4c1e-9a51-3c2d2f7f9e10","body":"it-planungsrat","actor":"DE-BY","issued_at":"2026-03-02T09:30:00Z","circulation":"5f0c3a86-1b7e-4d59-8a3e-0c7b1d2e4f60","choice":"yes","proposal_sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","statement":null}"#;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = Command::from_json(&bytes);
        let _ = Record::from_bytes(&bytes);
    }

    #[test]
    fn arbitrary_json_never_panics(value in json_value()) {
        let _ = Command::from_value(value.clone());
        let _ = Event::from_record("VoteCast", 1, value.clone());
        let _ = Event::from_record("CirculationOpened", 1, value);
    }

    #[test]
    fn a_vote_with_one_field_replaced_parses_or_is_refused(
        field in prop_oneof![
            Just("type"), Just("command_id"), Just("body"), Just("actor"), Just("issued_at"),
            Just("circulation"), Just("choice"), Just("proposal_sha256"), Just("statement"),
        ],
        replacement in json_value(),
    ) {
        let mut value: Value = serde_json::from_str(VOTE).unwrap_or_default();
        value[field] = replacement;
        if let Ok(command) = Command::from_value(value) {
            // Whatever parses must serialise back to the same command.
            prop_assert_eq!(Command::from_value(command.to_value()).ok(), Some(command));
        }
    }

    #[test]
    fn truncated_commands_are_refused(cut in 0..VOTE.len()) {
        prop_assert!(Command::from_json(&VOTE.as_bytes()[..cut]).is_err());
    }
}

#[test]
fn the_unchanged_vote_parses() {
    let value: Value = serde_json::from_str(VOTE).unwrap_or(json!(null));
    assert!(Command::from_value(value).is_ok());
}

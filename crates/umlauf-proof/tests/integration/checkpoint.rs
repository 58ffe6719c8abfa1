//! Signed notes and checkpoints against `proto/vectors/checkpoint.json`: Go's sumdb/note example
//! reproduced byte for byte, a real sum.golang.org checkpoint, umlauf's own checkpoints, and the
//! refusal cases; then Go's note tests that do not fit a vector file, and properties.

use proptest::prelude::*;
use serde::Deserialize;
use umlauf_proof::checkpoint::{self, Checkpoint};
use umlauf_proof::keys::{SigningKey, signing_key_from_seed};
use umlauf_proof::merkle::Hash;
use umlauf_proof::note::{self, MAX_SIGNATURES, NoteVerifier};

const CHECKPOINT_VECTORS: &str = include_str!("../../../../proto/vectors/checkpoint.json");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Vectors {
    description: String,
    notes: Vec<NoteVector>,
    checkpoints: Vec<CheckpointVector>,
    verifier_key_cases: Vec<VerifierKeyCase>,
    cases: Vec<NoteCase>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoteVector {
    description: String,
    source: String,
    signer_seed_hex: Option<String>,
    key_name: Option<String>,
    verifier_key: Option<String>,
    text: String,
    note: String,
    verifies_with: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointVector {
    description: String,
    source: String,
    signer_seed_hex: Option<String>,
    verifier_key: String,
    origin: String,
    size: u64,
    root_hex: String,
    note: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifierKeyCase {
    description: String,
    verifier_key: String,
    expected: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoteCase {
    description: String,
    note: String,
    verifier_key: String,
    expected: String,
}

fn vectors() -> Vectors {
    let file: Vectors = serde_json::from_str(CHECKPOINT_VECTORS).unwrap();
    assert!(!file.description.is_empty());
    file
}

fn seed(hex_seed: &str) -> SigningKey {
    signing_key_from_seed(hex::decode(hex_seed).unwrap().try_into().unwrap())
}

fn verifier(text: &str) -> NoteVerifier {
    text.parse().unwrap()
}

const PETER_KEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const GO_TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                       then you don't know what your problem is.\n";
const PETER_SIG: &str = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
const ENOCH_SIG: &str = "\u{2014} EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

#[test]
fn published_notes_verify_and_go_s_example_is_reproduced() {
    let file = vectors();
    assert_eq!(file.notes[0].verifier_key.as_deref(), Some(PETER_KEY));
    for vector in &file.notes {
        let context = format!("{}: {}", vector.description, vector.source);
        assert!(!vector.verifies_with.is_empty(), "{context}");
        for key in &vector.verifies_with {
            assert_eq!(
                note::open(&vector.note, &verifier(key)),
                Ok(vector.text.as_str()),
                "{context}"
            );
        }
        if let (Some(seed_hex), Some(name), Some(key)) = (
            &vector.signer_seed_hex,
            &vector.key_name,
            &vector.verifier_key,
        ) {
            let signing = seed(seed_hex);
            let ours = NoteVerifier::new(name, signing.verifying_key()).unwrap();
            assert_eq!(&ours.to_string(), key, "{context}");
            assert_eq!(
                note::sign(&vector.text, name, &signing).as_ref(),
                Ok(&vector.note),
                "{context}"
            );
        }
    }
}

#[test]
fn checkpoints_verify_and_umlauf_s_are_reproduced() {
    let file = vectors();
    assert!(
        file.checkpoints
            .iter()
            .any(|vector| vector.signer_seed_hex.is_none())
    );
    for vector in &file.checkpoints {
        let context = format!("{}: {}", vector.description, vector.source);
        let expected = Checkpoint {
            origin: vector.origin.clone(),
            size: vector.size,
            root: Hash::try_from(hex::decode(&vector.root_hex).unwrap()).unwrap(),
        };
        let key = verifier(&vector.verifier_key);
        assert_eq!(key.to_string(), vector.verifier_key);
        assert_eq!(
            checkpoint::verify(&vector.note, &key).as_ref(),
            Ok(&expected),
            "{context}"
        );
        assert!(vector.note.starts_with(&expected.body()), "{context}");
        if let Some(seed_hex) = &vector.signer_seed_hex {
            // umlauf's own: the key is named after the origin, and signing is reproducible.
            let signing = seed(seed_hex);
            assert_eq!(key.name(), vector.origin);
            assert_eq!(
                NoteVerifier::new(&vector.origin, signing.verifying_key()),
                Ok(key.clone())
            );
            assert_eq!(
                checkpoint::sign(&expected, &vector.origin, &signing).as_ref(),
                Ok(&vector.note),
                "{context}"
            );
        }
    }
}

#[test]
fn verifier_key_cases() {
    for case in vectors().verifier_key_cases {
        let outcome = match case.verifier_key.parse::<NoteVerifier>() {
            Ok(key) => {
                assert_eq!(key.to_string(), case.verifier_key, "{}", case.description);
                "ok"
            }
            Err(error) => error.code(),
        };
        assert_eq!(outcome, case.expected, "{}", case.description);
    }
}

#[test]
fn note_cases() {
    let file = vectors();
    assert!(file.cases.iter().any(|case| case.expected == "ok"));
    for case in file.cases {
        let outcome = checkpoint::verify(&case.note, &verifier(&case.verifier_key))
            .map_or_else(|error| error.code(), |_| "ok");
        assert_eq!(outcome, case.expected, "{}", case.description);
    }
}

/// Go's TestNewVerifier: no proper substring and no single-byte increment of a verifier key
/// parses.
#[test]
fn mangled_verifier_keys_are_refused() {
    let bytes = PETER_KEY.as_bytes();
    let mut mangled = Vec::new();
    for start in 0..=bytes.len() {
        for end in start + 1..=bytes.len() {
            if (start, end) != (0, bytes.len()) {
                mangled.push(bytes[start..end].to_vec());
            }
        }
    }
    for position in 0..bytes.len() {
        let mut changed = bytes.to_vec();
        changed[position] += 1;
        mangled.push(changed);
    }
    for text in mangled {
        let text = String::from_utf8(text).unwrap();
        assert!(text.parse::<NoteVerifier>().is_err(), "{text}");
    }
}

/// Go's TestOpen, for what a vector file cannot say as well.
#[test]
fn open_follows_go_s_rules() {
    let peter = verifier(PETER_KEY);
    let open = |note: &str| {
        note::open(note, &peter)
            .map(str::to_owned)
            .map_err(|error| error.code())
    };
    let signed = format!("{GO_TEXT}\n{PETER_SIG}");
    assert_eq!(open(&signed), Ok(GO_TEXT.to_owned()));

    // Signatures by other keys are ignored, however many and in whatever state.
    let enoch_corrupted = format!("{}ABCD{}", &ENOCH_SIG[..60], &ENOCH_SIG[60..]);
    let noisy = format!("{GO_TEXT}\n{PETER_SIG}{PETER_SIG}{ENOCH_SIG}{ENOCH_SIG}{enoch_corrupted}");
    assert_eq!(open(&noisy), Ok(GO_TEXT.to_owned()));
    assert_eq!(
        open(&format!("{GO_TEXT}\n{ENOCH_SIG}")),
        Err("no_known_signature")
    );

    // A broken signature by the known key rejects the whole note.
    let peter_corrupted = format!("{}ABCD{}", &PETER_SIG[..60], &PETER_SIG[60..]);
    assert_eq!(
        open(&format!("{GO_TEXT}\n{peter_corrupted}")),
        Err("bad_signature")
    );
    assert_eq!(
        open(&format!("{GO_TEXT}\n{PETER_SIG}{peter_corrupted}")),
        Err("bad_signature")
    );

    // A one-byte signature under the known key id is a signature by the known key, and bad.
    assert_eq!(
        open(&format!("{GO_TEXT}\n\u{2014} PeterNeumann x08go/Y=\n")),
        Err("bad_signature")
    );

    // At most 100 signatures.
    let many = |count| format!("{GO_TEXT}\n{}", PETER_SIG.repeat(count));
    assert_eq!(open(&many(MAX_SIGNATURES)), Ok(GO_TEXT.to_owned()));
    assert_eq!(open(&many(MAX_SIGNATURES + 1)), Err("malformed_note"));

    // Go's badMsgs ("\xff" cannot be in a &str, which is UTF-8 by construction).
    let bad = [
        GO_TEXT.to_owned(),
        format!("{GO_TEXT}\n"),
        format!("{GO_TEXT}\n{}", &PETER_SIG[..PETER_SIG.len() - 1]),
        format!("\x01{GO_TEXT}\n{PETER_SIG}"),
        format!(
            "{GO_TEXT}\n\u{2014} Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
        ),
        format!("{GO_TEXT}\n{PETER_SIG}Unexpected line.\n"),
        // And ours: a key id without a signature, an empty key name, a tab.
        format!("{GO_TEXT}\n\u{2014} PeterNeumann x08gow==\n"),
        format!(
            "{GO_TEXT}\n\u{2014}  x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
        ),
        format!(
            "{GO_TEXT}\n\u{2014} PeterNeumann\tx08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
        ),
        String::new(),
    ];
    for note in bad {
        assert_eq!(open(&note), Err("malformed_note"), "{note:?}");
    }
}

#[test]
fn replicas_sign_identical_checkpoints() {
    // Two replicas with the same key and the same tree head, built independently.
    let replica = || {
        let key = signing_key_from_seed([0x21; 32]);
        let checkpoint = Checkpoint {
            origin: "umlauf.example/log".to_owned(),
            size: 42,
            root: [7; 32],
        };
        checkpoint::sign(&checkpoint, "umlauf.example/log", &key).unwrap()
    };
    assert_eq!(replica(), replica());

    let key = signing_key_from_seed([0x21; 32]);
    let checkpoint = Checkpoint {
        origin: "umlauf.example/log".to_owned(),
        size: 42,
        root: [7; 32],
    };
    for origin in ["", "two\nlines", "tab\there"] {
        let bad = Checkpoint {
            origin: origin.to_owned(),
            ..checkpoint.clone()
        };
        assert_eq!(
            checkpoint::sign(&bad, "umlauf.example/log", &key).map_err(|e| e.code()),
            Err("malformed_checkpoint"),
            "{origin:?}"
        );
    }
}

fn origin() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9./-]{1,40}",
        any::<String>().prop_filter(
            "an origin is one non-empty line without control characters",
            |s| { !s.is_empty() && !s.chars().any(char::is_control) }
        ),
    ]
}

proptest! {
    #[test]
    fn checkpoints_round_trip_and_any_changed_character_is_refused(
        seed in any::<[u8; 32]>(),
        origin in origin(),
        size in any::<u64>(),
        root in any::<[u8; 32]>(),
        position in any::<prop::sample::Index>(),
        replacement in any::<char>(),
    ) {
        let key = signing_key_from_seed(seed);
        let name = "umlauf.example/log";
        let checkpoint = Checkpoint { origin, size, root };
        let signed = checkpoint::sign(&checkpoint, name, &key).unwrap();
        let log_key = NoteVerifier::new(name, key.verifying_key()).unwrap();
        prop_assert_eq!(checkpoint::verify(&signed, &log_key), Ok(checkpoint));

        let mut characters: Vec<char> = signed.chars().collect();
        let position = position.index(characters.len());
        prop_assume!(characters[position] != replacement);
        characters[position] = replacement;
        let changed: String = characters.into_iter().collect();
        prop_assert!(checkpoint::verify(&changed, &log_key).is_err(), "{:?}", changed);
    }

    #[test]
    fn parsers_never_panic(text in any::<String>(), key in "[ -~]{0,80}") {
        let log_key = verifier(PETER_KEY);
        let _ = checkpoint::verify(&text, &log_key);
        let _ = Checkpoint::from_body(&text);
        let _ = key.parse::<NoteVerifier>();
        let _ = text.parse::<NoteVerifier>();
    }
}

use std::io::BufReader;

use umlauf_audit::bundle::{BundleItem, BundleReader, BundleWriter, audit_bundle};
use umlauf_audit::{AuditOptions, TrustAnchors};
use umlauf_proof::keys::signing_key_from_seed;
use umlauf_proof::note::NoteVerifier;

use crate::history::{self, standard};

fn bundle(anchors: &TrustAnchors, written: &history::Written) -> Vec<u8> {
    // Checkpoints handed over in reverse order: the writer places each after its size.
    let checkpoints: Vec<String> = written.checkpoints.values().rev().cloned().collect();
    let mut writer = BundleWriter::new(
        Vec::new(),
        anchors,
        written.records.len() as u64,
        checkpoints,
    )
    .unwrap();
    for record in &written.records {
        writer.write_record(record).unwrap();
    }
    writer.finish().unwrap()
}

#[test]
fn a_bundle_streams_back_as_written_and_verifies() {
    let written = standard();
    let bytes = bundle(&history::anchors(), &written);
    let reader = BundleReader::new(BufReader::new(bytes.as_slice())).unwrap();
    assert_eq!(reader.header().size, written.records.len() as u64);
    let mut records = Vec::new();
    let mut checkpoint_after = Vec::new();
    for item in reader {
        match item.unwrap() {
            BundleItem::Record(record) => records.push(record),
            BundleItem::Checkpoint(_) => checkpoint_after.push(records.len() as u64),
        }
    }
    assert_eq!(records, written.records);
    assert_eq!(
        checkpoint_after,
        written.checkpoints.keys().copied().collect::<Vec<_>>()
    );

    let report = audit_bundle(
        bytes.as_slice(),
        &history::anchors(),
        AuditOptions::default(),
    )
    .unwrap_or_else(|failure| panic!("{failure}"));
    assert_eq!(report.checkpoints_checked, 4);
}

#[test]
fn a_bundle_is_verified_with_the_auditors_anchors_not_its_own() {
    let written = standard();
    // The bundle names a log key the forger controls; the auditor does not use it.
    let forger = signing_key_from_seed([66; 32]);
    let forged_anchors = TrustAnchors {
        genesis_keys: vec![forger.verifying_key()],
        log_key: NoteVerifier::new(history::LOG, forger.verifying_key()).unwrap(),
    };
    let bytes = bundle(&forged_anchors, &written);
    let failure = audit_bundle(
        bytes.as_slice(),
        &history::anchors(),
        AuditOptions::default(),
    )
    .unwrap_err();
    assert_eq!(failure.findings.len(), 1, "{failure}");
    assert_eq!(failure.first().unwrap().code(), "bundle_anchors_differ");

    // And a bundle whose anchors match but that lies about its size is unreadable.
    let mut bytes = bundle(&history::anchors(), &written);
    let text = String::from_utf8(bytes.clone()).unwrap();
    let size = written.records.len();
    bytes = text
        .replacen(
            &format!("\"size\":{size}"),
            &format!("\"size\":{}", size + 1),
            1,
        )
        .into_bytes();
    let failure = audit_bundle(
        bytes.as_slice(),
        &history::anchors(),
        AuditOptions::default(),
    )
    .unwrap_err();
    assert_eq!(failure.first().unwrap().code(), "unreadable_bundle");
}

#[test]
fn trust_anchors_read_from_their_json_file_form() {
    let anchors = history::anchors();
    let json = anchors.to_json();
    assert!(json.starts_with("{\"genesis_keys\":[\""), "{json}");
    assert_eq!(TrustAnchors::from_json(json.as_bytes()).unwrap(), anchors);
    assert!(TrustAnchors::from_json(b"{\"genesis_keys\":[],\"log_key\":\"nope\"}").is_err());
}

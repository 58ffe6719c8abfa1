use serde_json::json;
use umlauf_domain::Record;
use umlauf_proof::dsse::{self, COMMAND_PAYLOAD_TYPE, Envelope};
use umlauf_proof::keys::signing_key_from_seed;

use crate::expect_first;
use crate::history::{self, MEMBERS, circulation_id, standard};

fn parse(bytes: &[u8]) -> Record {
    Record::from_bytes(bytes).unwrap()
}

/// The 0-based index of the `nth` (from 0) record of `kind` in circulation `circulation`.
fn find(records: &[Vec<u8>], circulation: u64, kind: &str, nth: usize) -> usize {
    let stream = format!("circulation/{}", circulation_id(circulation));
    records
        .iter()
        .enumerate()
        .filter(|(_, bytes)| {
            let record = parse(bytes);
            record.stream.to_string() == stream && record.event_type == kind
        })
        .nth(nth)
        .map(|(index, _)| index)
        .unwrap()
}

fn edit(records: &mut [Vec<u8>], index: usize, change: impl FnOnce(&mut Record)) {
    let mut record = parse(&records[index]);
    change(&mut record);
    records[index] = record.to_bytes();
}

/// Rewrites every position so the log is gapless again, as a careful forger would.
fn renumber(records: &mut [Vec<u8>]) {
    for index in 0..records.len() {
        edit(records, index, |record| record.position = index as u64 + 1);
    }
}

fn position(index: usize) -> Option<u64> {
    Some(index as u64 + 1)
}

#[test]
fn a_changed_vote_choice_is_caught_at_the_vote() {
    let mut written = standard();
    let vote = find(&written.records, 2, "VoteCast", 3);
    edit(&mut written.records, vote, |record| {
        record.data["choice"] = json!("no");
    });
    let failure = expect_first(
        &written.records,
        &written.checkpoints,
        position(vote),
        "event_differs",
    );
    assert!(
        failure.first().unwrap().to_string().contains("$.choice"),
        "{failure}"
    );
}

#[test]
fn a_deleted_and_renumbered_record_is_caught_where_its_stream_skips_a_version() {
    let mut written = standard();
    let vote = find(&written.records, 1, "VoteCast", 2);
    written.records.remove(vote);
    renumber(&mut written.records);
    expect_first(
        &written.records,
        &written.checkpoints,
        position(vote),
        "stream_version",
    );
}

#[test]
fn two_reordered_records_are_caught_at_the_first() {
    let mut written = standard();
    let vote = find(&written.records, 1, "VoteCast", 3);
    written.records.swap(vote, vote + 1);
    renumber(&mut written.records);
    expect_first(
        &written.records,
        &written.checkpoints,
        position(vote),
        "stream_version",
    );
}

#[test]
fn signatures_swapped_between_two_votes_are_caught_at_the_first() {
    let mut written = standard();
    let first = find(&written.records, 1, "VoteCast", 1);
    let second = find(&written.records, 1, "VoteCast", 4);
    let signature = |bytes: &[u8]| parse(bytes).envelope.unwrap()["signatures"][0]["sig"].clone();
    let (one, other) = (
        signature(&written.records[first]),
        signature(&written.records[second]),
    );
    edit(&mut written.records, first, |record| {
        record.envelope.as_mut().unwrap()["signatures"][0]["sig"] = other;
    });
    edit(&mut written.records, second, |record| {
        record.envelope.as_mut().unwrap()["signatures"][0]["sig"] = one;
    });
    let failure = expect_first(
        &written.records,
        &written.checkpoints,
        position(first),
        "bad_signature",
    );
    assert!(
        failure.findings.iter().any(
            |finding| finding.position == position(second) && finding.code() == "bad_signature"
        )
    );
}

#[test]
fn a_vote_re_signed_with_a_key_registered_after_it_is_caught_at_the_vote() {
    let mut written = standard();
    // DE-BY (member 4) voted in circulation 1; its deputy key is registered at the very end.
    let vote = (0..)
        .map(|nth| find(&written.records, 1, "VoteCast", nth))
        .find(|index| parse(&written.records[*index]).data["member"] == MEMBERS[4])
        .unwrap();
    edit(&mut written.records, vote, |record| {
        let envelope: Envelope = serde_json::from_value(record.envelope.take().unwrap()).unwrap();
        let resigned = dsse::sign(
            COMMAND_PAYLOAD_TYPE,
            &envelope.payload,
            &history::deputy_key(4),
        );
        record.envelope = Some(serde_json::to_value(&resigned).unwrap());
    });
    expect_first(
        &written.records,
        &written.checkpoints,
        position(vote),
        "unknown_key",
    );
}

#[test]
fn a_changed_outcome_is_caught_at_the_close() {
    let mut written = standard();
    let close = find(&written.records, 1, "CirculationClosed", 0);
    edit(&mut written.records, close, |record| {
        record.data["decision"] = json!({"result": "rejected"});
    });
    let failure = expect_first(
        &written.records,
        &written.checkpoints,
        position(close),
        "event_differs",
    );
    assert!(
        failure.first().unwrap().to_string().contains("decision"),
        "{failure}"
    );
}

#[test]
fn a_changed_deadline_close_is_caught_at_the_close() {
    let mut written = standard();
    let close = find(&written.records, 3, "CirculationClosed", 0);
    assert!(parse(&written.records[close]).command_id.is_none());
    edit(&mut written.records, close, |record| {
        record.data["decision"] = json!({"result": "adopted"});
    });
    expect_first(
        &written.records,
        &written.checkpoints,
        position(close),
        "event_differs",
    );
}

#[test]
fn a_truncated_log_is_caught_by_a_checkpoint_beyond_its_end() {
    let mut written = standard();
    let sizes: Vec<u64> = written.checkpoints.keys().copied().collect();
    let cut = sizes[2];
    written.records.truncate(usize::try_from(cut).unwrap());
    let failure = expect_first(
        &written.records,
        &written.checkpoints,
        Some(cut + 1),
        "log_truncated",
    );
    assert_eq!(failure.findings.len(), 1, "{failure}");
}

#[test]
fn a_record_beyond_the_newest_checkpoint_is_reported_as_uncovered() {
    let mut written = standard();
    let size = written.records.len() as u64;
    let extra = written.history.register_deputy(5);
    written.records.extend(extra);
    let failure = expect_first(
        &written.records,
        &written.checkpoints,
        Some(size + 1),
        "uncovered_records",
    );
    assert_eq!(failure.findings.len(), 1, "{failure}");
}

#[test]
fn a_checkpoint_signed_by_another_key_is_refused() {
    let mut written = standard();
    let size = written.records.len() as u64;
    let root = written.history.checkpoint();
    let root = umlauf_proof::checkpoint::verify(
        &root,
        &umlauf_proof::note::NoteVerifier::new(history::LOG, history::log_key().verifying_key())
            .unwrap(),
    )
    .unwrap()
    .root;
    let forged = history::sign_checkpoint(size, root, &signing_key_from_seed([99; 32]));
    written.checkpoints.insert(size + 1000, forged);
    let failure = expect_first(
        &written.records,
        &written.checkpoints,
        None,
        "checkpoint_not_signed",
    );
    assert_eq!(failure.findings.len(), 1, "{failure}");
}

#[test]
fn a_checkpoint_of_a_fork_is_caught_at_its_size() {
    let mut written = standard();
    let sizes: Vec<u64> = written.checkpoints.keys().copied().collect();
    let size = sizes[1];
    let fork = history::sign_checkpoint(size, [7; 32], &history::log_key());
    written.checkpoints.insert(size, fork);
    let failure = expect_first(
        &written.records,
        &written.checkpoints,
        Some(size),
        "checkpoint_root_mismatch",
    );
    assert_eq!(failure.findings.len(), 1, "{failure}");
}

#[test]
fn a_record_forged_without_a_command_is_unaccounted() {
    let mut written = standard();
    let vote = find(&written.records, 6, "VoteCast", 1);
    edit(&mut written.records, vote, |record| {
        record.envelope = None;
        record.command_id = None;
    });
    expect_first(
        &written.records,
        &written.checkpoints,
        position(vote),
        "unaccounted_record",
    );
}

#[test]
fn uncovered_records_never_hide_a_difference_among_them() {
    let mut written = standard();
    let covered = written.records.len() as u64;
    let extra = written.history.register_deputy(5);
    written.records.extend(extra);
    let extra = written.history.open(7);
    written.records.extend(extra);
    let extra = written.history.vote(7, 4, "yes");
    written.records.extend(extra);
    let vote = written.records.len() - 1;
    edit(&mut written.records, vote, |record| {
        record.data["choice"] = json!("no");
    });
    let failure = expect_first(
        &written.records,
        &written.checkpoints,
        position(vote),
        "event_differs",
    );
    // The stretch nothing vouches for is still reported, after the difference.
    let last = failure.findings.last().unwrap();
    assert_eq!(
        (last.position, last.code()),
        (Some(covered + 1), "uncovered_records"),
        "{failure}"
    );
}

#[test]
fn a_log_cut_before_its_only_checkpoint_names_the_cut_not_record_1() {
    let mut written = standard();
    let newest = *written.checkpoints.keys().last().unwrap();
    let only: std::collections::BTreeMap<u64, String> = written
        .checkpoints
        .iter()
        .filter(|(size, _)| **size == newest)
        .map(|(size, note)| (*size, note.clone()))
        .collect();
    let cut = newest - 5;
    written.records.truncate(usize::try_from(cut).unwrap());
    let failure = expect_first(&written.records, &only, Some(cut + 1), "log_truncated");
    assert!(
        failure
            .findings
            .iter()
            .any(|finding| finding.code() == "uncovered_records"),
        "{failure}"
    );
}

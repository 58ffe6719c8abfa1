use umlauf_audit::{AuditOptions, Auditor, FindingKind, Output, ReadModel};
use umlauf_domain::read_model::CirculationState;

use crate::audit;
use crate::history::{self, standard};

#[test]
fn a_good_history_passes_with_a_full_report() {
    let written = standard();
    let (result, _) = audit(&written.records, &written.checkpoints);
    let report = result.unwrap_or_else(|failure| panic!("{failure}"));
    assert_eq!(report.records, written.records.len() as u64);
    assert_eq!(report.final_size, written.records.len() as u64);
    assert_eq!(report.bodies, 1);
    assert_eq!(report.circulations, 6);
    assert_eq!(report.open_circulations, 1);
    assert_eq!(report.decisions.adopted, 1);
    assert_eq!(report.decisions.rejected, 2);
    assert_eq!(report.decisions.failed_objection, 1);
    assert_eq!(report.decisions.withdrawn, 1);
    assert_eq!(report.deadline_closes, 1);
    // Constitution, 6 openings, 17 + 17 + 10 + 3 votes, an objection, a withdrawal, a key.
    assert_eq!(report.commands, 1 + 6 + 47 + 1 + 1 + 1);
    assert_eq!(report.signatures_verified, report.commands);
    assert_eq!(report.checkpoints_checked, 4);
    assert_eq!(report.newest_checkpoint, Some(report.final_size));
    let text = report.to_string();
    assert!(text.contains("1 adopted, 2 rejected"), "{text}");
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["decisions"]["adopted"], 1);
}

#[test]
fn read_models_are_handed_out_as_circulations_close_and_at_the_end() {
    let written = standard();
    let (result, outputs) = audit(&written.records, &written.checkpoints);
    result.unwrap();
    let statuses: Vec<(u64, CirculationState)> = outputs
        .iter()
        .filter_map(|output| match output {
            Output::ReadModel(ReadModel::Circulation { position, status }) => {
                Some((*position, status.state))
            }
            _ => None,
        })
        .collect();
    let closed = statuses
        .iter()
        .filter(|(_, state)| *state == CirculationState::Closed)
        .count();
    assert_eq!(closed, 5);
    assert_eq!(statuses.last().unwrap().1, CirculationState::Open);
    let keys = outputs
        .iter()
        .find_map(|output| match output {
            Output::ReadModel(ReadModel::Keys { keys, .. }) => Some(keys.len()),
            _ => None,
        })
        .unwrap();
    // The secretariat's key, 17 members' keys and the deputy key.
    assert_eq!(keys, 19);
}

#[test]
fn a_read_model_mismatch_reported_by_the_caller_fails_the_audit() {
    let written = standard();
    let mut auditor = Auditor::new(history::anchors(), AuditOptions::default());
    for note in written.checkpoints.values().take(1) {
        auditor.add_checkpoint(note).unwrap();
    }
    let mut closes = Vec::new();
    for record in &written.records {
        for output in auditor.push(record).unwrap() {
            if let Output::ReadModel(ReadModel::Circulation { position, status }) = output {
                closes.push((position, status));
            }
        }
    }
    closes.extend(
        auditor
            .flush()
            .into_iter()
            .filter_map(|output| match output {
                Output::ReadModel(ReadModel::Circulation { position, status }) => {
                    Some((position, status))
                }
                _ => None,
            }),
    );
    let (position, status) = &closes[0];
    // The caller's stored row says "open"; it reports the difference.
    auditor.record_read_model_mismatch(
        Some(*position),
        "circulation_status",
        &status.circulation.to_string(),
        "state: stored open, rebuilt closed",
    );
    let failure = auditor.finish().unwrap_err();
    assert!(failure.findings.iter().any(|finding| matches!(
        &finding.kind,
        FindingKind::ReadModelMismatch { model, .. } if model == "circulation_status"
    )));
}

#[test]
fn a_stored_leaf_hash_must_be_the_hash_of_the_bytes() {
    let written = standard();
    let mut auditor = Auditor::new(history::anchors(), AuditOptions::default());
    for note in written.checkpoints.values() {
        auditor.add_checkpoint(note).unwrap();
    }
    for (index, record) in written.records.iter().enumerate() {
        let mut leaf = umlauf_proof::merkle::leaf_hash(record);
        if index == 4 {
            leaf[0] ^= 1;
        }
        auditor.push_with_leaf_hash(record, leaf).unwrap();
    }
    let failure = auditor.finish().unwrap_err();
    let first = failure.first().unwrap();
    assert_eq!(
        (first.position, first.code()),
        (Some(5), "leaf_hash_mismatch")
    );
}

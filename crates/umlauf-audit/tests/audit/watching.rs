use umlauf_audit::watch::{Alarm, Checked, Watcher};
use umlauf_proof::keys::signing_key_from_seed;
use umlauf_proof::note::NoteVerifier;

use crate::history::{self, standard};

fn watcher() -> Watcher {
    Watcher::new(NoteVerifier::new(history::LOG, history::log_key().verifying_key()).unwrap())
}

/// Feeds the checkpoints in size order, pushing the records up to each: the first alarm.
fn watch(records: &[Vec<u8>], notes: &[(u64, String)]) -> Result<u64, Alarm> {
    let mut watcher = watcher();
    for (_, note) in notes {
        let checkpoint = watcher.open(note)?;
        while watcher.size() < checkpoint.size.min(records.len() as u64) {
            let next = watcher.size();
            watcher.push_record(next + 1, &records[usize::try_from(next).unwrap()])?;
        }
        watcher.check(&checkpoint)?;
    }
    Ok(watcher.checked())
}

#[test]
fn every_checkpoint_of_a_good_log_matches() {
    let written = standard();
    let notes: Vec<(u64, String)> = written.checkpoints.into_iter().collect();
    assert_eq!(watch(&written.records, &notes), Ok(notes.len() as u64));
}

#[test]
fn a_checkpoint_of_a_fork_raises_the_alarm() {
    let written = standard();
    let mut notes: Vec<(u64, String)> = written.checkpoints.into_iter().collect();
    let size = notes[2].0;
    notes[2].1 = history::sign_checkpoint(size, [7; 32], &history::log_key());
    let alarm = watch(&written.records, &notes).unwrap_err();
    assert_eq!(alarm.code(), "checkpoint_root_mismatch", "{alarm}");
    assert!(alarm.to_string().contains("FORK OR REWRITE"), "{alarm}");
}

#[test]
fn a_rewritten_record_raises_the_alarm_at_the_next_checkpoint() {
    let mut written = standard();
    let notes: Vec<(u64, String)> = written.checkpoints.into_iter().collect();
    let index = usize::try_from(notes[1].0).unwrap() + 2;
    written.records[index][20] ^= 1;
    let alarm = watch(&written.records, &notes).unwrap_err();
    assert!(
        matches!(alarm, Alarm::RootMismatch { size, .. } if size == notes[2].0),
        "{alarm}"
    );
}

#[test]
fn a_checkpoint_signed_by_another_key_raises_the_alarm() {
    let written = standard();
    let mut notes: Vec<(u64, String)> = written.checkpoints.into_iter().collect();
    let size = notes[1].0;
    notes[1].1 = history::sign_checkpoint(size, [7; 32], &signing_key_from_seed([99; 32]));
    assert_eq!(
        watch(&written.records, &notes).unwrap_err().code(),
        "checkpoint_not_signed"
    );
}

#[test]
fn two_roots_for_one_size_and_a_short_log_raise_the_alarm() {
    let written = standard();
    let notes: Vec<(u64, String)> = written.checkpoints.into_iter().collect();
    let mut watcher = watcher();
    let first = watcher.open(&notes[0].1).unwrap();
    for (index, record) in written
        .records
        .iter()
        .enumerate()
        .take(usize::try_from(first.size).unwrap())
    {
        watcher.push_record(index as u64 + 1, record).unwrap();
    }
    assert_eq!(watcher.check(&first), Ok(Checked::Matched));
    assert_eq!(watcher.check(&first), Ok(Checked::Repeated));
    let other = history::sign_checkpoint(first.size, [9; 32], &history::log_key());
    let other = watcher.open(&other).unwrap();
    assert_eq!(watcher.check(&other).unwrap_err().code(), "two_roots");
    let later = watcher.open(&notes[1].1).unwrap();
    assert_eq!(watcher.check(&later).unwrap_err().code(), "log_short");
    assert_eq!(
        watcher
            .push_record(first.size + 2, b"x")
            .unwrap_err()
            .code(),
        "log_out_of_order"
    );
}

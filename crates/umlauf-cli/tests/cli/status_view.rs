//! The status table, from fixed `CirculationStatus` JSON, against snapshots in `data/`.

use chrono::{DateTime, Utc};
use umlauf_cli::body_file::BodyFile;
use umlauf_cli::render::{Style, status_table};
use umlauf_domain::read_model::CirculationStatus;

use crate::support::{check_snapshot, data_file, repository};

fn check(fixture: &str, now: &str, snapshot: &str) {
    let status: CirculationStatus =
        serde_json::from_str(&std::fs::read_to_string(data_file(fixture)).unwrap()).unwrap();
    let names = BodyFile::read(&repository().join("deploy/bodies/it-planungsrat.json"))
        .unwrap()
        .member_names();
    let now: DateTime<Utc> = now.parse().unwrap();
    check_snapshot(snapshot, &status_table(&status, &names, now, Style::PLAIN));
}

#[test]
fn an_open_circulation_shows_votes_statements_the_missing_and_the_running_tally() {
    check(
        "status-open.json",
        "2026-03-02T10:42:00Z",
        "status-open.txt",
    );
}

#[test]
fn a_closed_circulation_shows_its_decision() {
    check(
        "status-closed.json",
        "2026-03-04T08:00:00Z",
        "status-closed.txt",
    );
}

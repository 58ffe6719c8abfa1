//! Body files: the IT-Planungsrat's, exact decimal weights, refusals, and `body init --dry-run`.

use std::path::Path;

use umlauf_cli::body_file::{BodyFile, to_units};
use umlauf_domain::Command;
use umlauf_domain::command::{Action, MemberKind};
use umlauf_domain::ids::{Actor, MemberId, TableName};
use umlauf_domain::rule::Preset;
use umlauf_proof::keys;

use crate::support::{repository, run_in, stderr, success};

fn it_planungsrat() -> BodyFile {
    BodyFile::read(&repository().join("deploy/bodies/it-planungsrat.json")).unwrap()
}

#[test]
fn the_it_planungsrat_has_17_voting_and_5_advisory_members() {
    let file = it_planungsrat();
    assert_eq!(file.body.as_str(), "it-planungsrat");
    assert_eq!(file.members.len(), 22);
    assert_eq!(file.voting_members().count(), 17);
    let bund = MemberId::parse("DE").unwrap();
    let bund = file
        .members
        .iter()
        .find(|member| member.id == bund)
        .unwrap();
    assert_eq!(bund.kind, MemberKind::Voting);
    assert_eq!(
        file.members
            .iter()
            .filter(|member| member
                .groups
                .iter()
                .any(|group| group.as_str() == "laender"))
            .count(),
        16
    );
    assert_eq!(
        file.presets.keys().copied().collect::<Vec<_>>(),
        [
            Preset::ItPlanungsratResolution,
            Preset::ItPlanungsratRecommendation,
            Preset::Unanimity
        ]
    );
}

#[test]
fn the_2016_koenigstein_table_sums_to_exactly_ten_million_units() {
    let tables = it_planungsrat().weight_table_specs().unwrap();
    let [table] = tables.as_slice() else {
        panic!("one weight table expected, found {}", tables.len());
    };
    assert_eq!(table.table, TableName::parse("koenigstein").unwrap());
    assert_eq!(table.year, 2016);
    assert_eq!(table.weights.len(), 16);
    let sum: u64 = table.weights.values().map(|weight| weight.0).sum();
    assert_eq!(sum, 10_000_000);
    let weight = |member: &str| table.weights[&MemberId::parse(member).unwrap()].0;
    assert_eq!(weight("DE-BB"), 303_655);
    assert_eq!(weight("DE-NW"), 2_114_424);
    assert_eq!(weight("DE-HB"), 95_331);
    assert_eq!(weight("DE-MV"), 201_240);
}

#[test]
fn decimals_become_integer_units_without_rounding() {
    assert_eq!(to_units("3.03655", 5), Ok(303_655));
    assert_eq!(to_units("15.53327", 5), Ok(1_553_327));
    assert_eq!(to_units("100", 5), Ok(10_000_000));
    assert_eq!(to_units("0.1", 5), Ok(10_000));
    assert_eq!(to_units("6", 0), Ok(6));
    assert!(
        to_units("3.036551", 5)
            .unwrap_err()
            .contains("never rounded")
    );
    assert!(to_units("3,03655", 5).is_err());
    assert!(to_units("-1", 5).is_err());
}

/// A small body file with one weight table, `weights` spliced in.
fn small_body(weights: &str, extra: &str) -> String {
    format!(
        r#"{{"body": "board", "name": "Board",
            "groups": [{{"id": "all", "name": "All"}}],
            "members": [{{"id": "A", "name": "A", "kind": "voting", "groups": ["all"]}},
                        {{"id": "B", "name": "B", "kind": "voting"}}],
            "weight_tables": [{{"table": "shares", "year": 2026, "scale": 2, "total": "1",
                               "weights": {weights}}}]{extra}}}"#
    )
}

#[test]
fn body_files_are_refused_where_they_would_be_read_inexactly_or_wrongly() {
    let ok = small_body(r#"{"A": "0.25", "B": "0.75"}"#, "");
    assert!(BodyFile::parse(&ok).is_ok());
    let cases = [
        (
            small_body(r#"{"A": 0.25, "B": "0.75"}"#, ""),
            "write it as a string",
        ),
        (
            small_body(r#"{"A": "0.255", "B": "0.745"}"#, ""),
            "never rounded",
        ),
        (
            small_body(r#"{"A": "0.25", "B": "0.74"}"#, ""),
            "add up to 99 units",
        ),
        (
            small_body(r#"{"A": "0.25", "C": "0.75"}"#, ""),
            "C, which is not a member",
        ),
        (
            small_body(r#"{"A": "0.25", "B": "0.75"}"#, r#", "extra": 1"#),
            "unknown field",
        ),
        (
            small_body(
                r#"{"A": "0.25", "B": "0.75"}"#,
                r#", "presets": {"majority": {}}"#,
            ),
            "majority",
        ),
    ];
    for (text, needle) in cases {
        let error = format!("{:#}", BodyFile::parse(&text).unwrap_err());
        assert!(error.contains(needle), "{needle:?} not in: {error}");
    }
}

#[test]
fn body_init_signs_a_constitution_with_the_genesis_key_and_the_files_keys() {
    let dir = tempfile::tempdir().unwrap();
    success(&run_in(dir.path(), &["keygen", "--out", "genesis.pem"]));
    success(&run_in(dir.path(), &["keygen", "--out", "secretariat.pem"]));
    let body = small_body(
        r#"{"A": "0.25", "B": "0.75"}"#,
        r#", "keys": [{"holder": "secretariat", "key_file": "secretariat.pem", "label": "office"}]"#,
    );
    std::fs::write(dir.path().join("board.json"), body).unwrap();
    // Run from elsewhere: the key file is found relative to the body file.
    let elsewhere = tempfile::tempdir().unwrap();
    let output = success(&run_in(
        elsewhere.path(),
        &[
            "body",
            "init",
            dir.path().join("board.json").to_str().unwrap(),
            "--key",
            dir.path().join("genesis.pem").to_str().unwrap(),
            "--dry-run",
        ],
    ));
    let command = Command::from_json(output.as_bytes()).unwrap();
    assert_eq!(command.actor, Actor::Genesis);
    assert_eq!(command.body.as_str(), "board");
    let Action::ConstituteBody(constitution) = command.action else {
        panic!("not a ConstituteBody: {output}");
    };
    let public = |file: &str| {
        let key = umlauf_cli::key_file::load_public_key(&dir.path().join(file)).unwrap();
        keys::public_key_to_base64(&key)
    };
    assert_eq!(constitution.genesis_key.to_string(), public("genesis.pem"));
    assert_eq!(constitution.keys.len(), 1);
    assert_eq!(constitution.keys[0].holder, Actor::Secretariat);
    assert_eq!(
        constitution.keys[0].public_key.to_string(),
        public("secretariat.pem")
    );
    assert_eq!(constitution.weight_tables[0].weights.len(), 2);

    // Only a genesis key acting as genesis constitutes a body.
    let output = run_in(
        dir.path(),
        &[
            "body",
            "init",
            "board.json",
            "--key",
            "genesis.pem",
            "--as",
            "secretariat",
            "--dry-run",
        ],
    );
    assert!(
        stderr(&output).contains("constituted by a genesis key"),
        "{}",
        stderr(&output)
    );
    assert!(Path::new(&dir.path().join("board.json")).exists());
}

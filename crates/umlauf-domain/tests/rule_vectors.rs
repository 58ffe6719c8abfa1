//! The rule-outcome vectors of `proto/vectors/rules.json`: every case of every preset, run
//! through the rule engine, gives the outcome the vectors state. The vectors are the contract
//! for other implementations; this test keeps them true for this one.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test fails loudly on a broken vector"
)]

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use umlauf_domain::rule::{
    Answers, Electorate, Moment, Outcome, Preset, PresetParams, certain_outcome, evaluate,
};

const VECTORS: &str = include_str!("../../../proto/vectors/rules.json");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Vectors {
    #[allow(dead_code, reason = "documentation for readers of the vectors")]
    description: String,
    electorates: BTreeMap<String, Electorate>,
    presets: Vec<PresetVectors>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PresetVectors {
    preset: Preset,
    params: PresetParams,
    cases: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    description: String,
    electorate: String,
    answers: Answers,
    moment: VectorMoment,
    outcome: Outcome,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum VectorMoment {
    BeforeDeadline,
    AtDeadline,
}

impl From<VectorMoment> for Moment {
    fn from(moment: VectorMoment) -> Self {
        match moment {
            VectorMoment::BeforeDeadline => Moment::BeforeDeadline,
            VectorMoment::AtDeadline => Moment::AtDeadline,
        }
    }
}

fn vectors() -> Vectors {
    serde_json::from_str(VECTORS).expect("proto/vectors/rules.json parses")
}

#[test]
fn every_rule_vector_gives_its_outcome() {
    let vectors = vectors();
    let mut checked = 0;
    for preset in &vectors.presets {
        let rule = preset.preset.rule(&preset.params).unwrap();
        for case in &preset.cases {
            let params = serde_json::to_string(&preset.params).unwrap();
            let what = format!("{} {params}: {}", preset.preset, case.description);
            let electorate = vectors
                .electorates
                .get(&case.electorate)
                .unwrap_or_else(|| panic!("{what}: no electorate {}", case.electorate));
            rule.validate(electorate)
                .unwrap_or_else(|error| panic!("{what}: the rule does not fit: {error}"));
            for member in case.answers.votes.keys().chain(&case.answers.objections) {
                assert!(
                    electorate.members.contains_key(member),
                    "{what}: {member} is not in the electorate"
                );
            }
            let evaluation = evaluate(&rule, electorate, &case.answers, case.moment.into());
            assert_eq!(evaluation.outcome, case.outcome, "{what}");
            if matches!(case.moment, VectorMoment::BeforeDeadline) && case.outcome.is_final() {
                // Final before the deadline: certain whatever the rest would answer.
                assert_eq!(
                    certain_outcome(&rule, electorate, &case.answers),
                    Some(case.outcome),
                    "{what}"
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 0);
}

#[test]
fn the_vectors_cover_every_preset_and_every_kind_of_outcome() {
    let vectors = vectors();
    let presets: BTreeSet<Preset> = vectors.presets.iter().map(|p| p.preset).collect();
    assert_eq!(presets, Preset::ALL.into_iter().collect::<BTreeSet<_>>());
    for preset in Preset::ALL {
        let cases: Vec<&Case> = vectors
            .presets
            .iter()
            .filter(|p| p.preset == preset)
            .flat_map(|p| &p.cases)
            .collect();
        let at_deadline = |outcome: Outcome| {
            cases
                .iter()
                .any(|c| matches!(c.moment, VectorMoment::AtDeadline) && c.outcome == outcome)
        };
        assert!(at_deadline(Outcome::Adopted), "{preset}: no adoption");
        assert!(
            cases
                .iter()
                .any(|c| c.outcome != Outcome::Adopted && c.outcome != Outcome::Pending),
            "{preset}: nothing that fails or is rejected"
        );
        assert!(
            cases
                .iter()
                .any(|c| matches!(c.moment, VectorMoment::BeforeDeadline)),
            "{preset}: nothing before the deadline"
        );
    }
}

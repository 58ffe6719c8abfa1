//! The voting-rule engine: the presets on the real tables of `DOMAIN.md`, early close, validation,
//! and properties checked against brute-force enumeration.
//!
//! Answers are written as a small text: `*=yes DE-BY=no DE-NW=abstain DE-HB=object DE-HH=silent`,
//! applied left to right, where `*` is every elector.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on a broken fixture"
)]

use std::collections::{BTreeMap, BTreeSet};

use umlauf_domain::ids::{Choice, Fraction, GroupId, MemberId, TableName, Weight};
use umlauf_domain::rule::{
    Abstention, Answers, Comparison, EarlyClose, Elector, Electorate, ElectorateSpec, Evaluation,
    FailureReason, Moment, Objection, Outcome, Preset, PresetParams, Quorum, Requirement, Rule,
    Scope, ShareBase, Silence, VoteChange, Weighting, certain_outcome, evaluate,
};

const KOENIGSTEIN_2016: &str = include_str!("data/koenigstein-2016.json");
const BUNDESRAT_VOTES: &str = include_str!("data/bundesrat-votes.json");

const ADOPTED: Outcome = Outcome::Adopted;
const REJECTED: Outcome = Outcome::Rejected;
const PENDING: Outcome = Outcome::Pending;
const NO_QUORUM: Outcome = Outcome::Failed(FailureReason::Quorum);
const OBJECTED: Outcome = Outcome::Failed(FailureReason::Objection);

use Moment::{AtDeadline, BeforeDeadline};

// ---------------------------------------------------------------------------------------------
// Helpers

fn member(id: &str) -> MemberId {
    MemberId::parse(id).unwrap()
}

fn group(id: &str) -> GroupId {
    GroupId::parse(id).unwrap()
}

fn table(name: &str) -> TableName {
    TableName::parse(name).unwrap()
}

fn members(ids: &[&str]) -> BTreeSet<MemberId> {
    ids.iter().map(|id| member(id)).collect()
}

/// An elector in `groups` with one weight per `(table, weight)`.
fn elector(groups: &[&str], weights: &[(&str, u64)]) -> Elector {
    Elector {
        groups: groups.iter().map(|name| group(name)).collect(),
        weights: weights
            .iter()
            .map(|(name, weight)| (table(name), Weight(*weight)))
            .collect(),
    }
}

/// Reads `{"weights": {"DE-BB": "3.03655", …}}` (five decimals) or `{"weights": {"DE-BB": 4}}`
/// into integer weights: Königstein shares in units of 0.00001 %.
fn weights(json: &str) -> BTreeMap<MemberId, u64> {
    let value: serde_json::Value = serde_json::from_str(json).unwrap();
    let weights = value["weights"].as_object().unwrap();
    weights
        .iter()
        .map(|(id, weight)| {
            let units = match weight {
                serde_json::Value::Number(number) => number.as_u64().unwrap(),
                serde_json::Value::String(text) => {
                    let (whole, decimals) = text.split_once('.').unwrap();
                    assert_eq!(decimals.len(), 5, "{text}");
                    format!("{whole}{decimals}").parse().unwrap()
                }
                other => panic!("unexpected weight {other}"),
            };
            (member(id), units)
        })
        .collect()
}

fn koenigstein() -> BTreeMap<MemberId, u64> {
    weights(KOENIGSTEIN_2016)
}

/// The IT-Planungsrat's 17 voting members with the 2016 Königstein key.
fn it_planungsrat() -> Electorate {
    it_planungsrat_with(&koenigstein())
}

fn it_planungsrat_with(key: &BTreeMap<MemberId, u64>) -> Electorate {
    let mut members = BTreeMap::from([(member("DE"), elector(&["bund"], &[]))]);
    for (land, weight) in key {
        members.insert(
            land.clone(),
            elector(&["laender"], &[("koenigstein", *weight)]),
        );
    }
    Electorate { members }
}

/// The Bundesrat's 16 Länder with their votes.
fn bundesrat() -> Electorate {
    let members = weights(BUNDESRAT_VOTES)
        .into_iter()
        .map(|(land, votes)| (land, elector(&["laender"], &[("bundesrat", votes)])))
        .collect();
    Electorate { members }
}

/// The 27 EU states with a made-up population table summing to 100: eight large states hold
/// 81, the other 19 hold 1 each.
fn eu() -> Electorate {
    const LARGE: [(&str, u64); 8] = [
        ("DE", 19),
        ("FR", 15),
        ("IT", 13),
        ("ES", 11),
        ("PL", 9),
        ("RO", 6),
        ("NL", 5),
        ("BE", 3),
    ];
    const SMALL: [&str; 19] = [
        "AT", "BG", "CY", "CZ", "DK", "EE", "FI", "GR", "HR", "HU", "IE", "LT", "LU", "LV", "MT",
        "PT", "SE", "SI", "SK",
    ];
    let members = LARGE
        .into_iter()
        .chain(SMALL.into_iter().map(|state| (state, 1)))
        .map(|(state, population)| (member(state), elector(&[], &[("population", population)])))
        .collect();
    Electorate { members }
}

/// A supervisory board of `size` members `B1`, `B2`, …
fn board(size: usize) -> Electorate {
    let members = (1..=size)
        .map(|index| (member(&format!("B{index}")), Elector::default()))
        .collect();
    Electorate { members }
}

fn preset(preset: Preset) -> Rule {
    preset.rule(&PresetParams::default()).unwrap()
}

/// Applies an answer text (see the module documentation).
fn answers(electorate: &Electorate, text: &str) -> Answers {
    let mut answers = Answers::default();
    for token in text.split_whitespace() {
        let (who, what) = token
            .split_once('=')
            .unwrap_or_else(|| panic!("bad token {token}"));
        let who: Vec<MemberId> = if who == "*" {
            electorate.members.keys().cloned().collect()
        } else {
            vec![member(who)]
        };
        for id in who {
            answers.votes.remove(&id);
            answers.objections.remove(&id);
            let vote = match what {
                "yes" => Choice::Yes,
                "no" => Choice::No,
                "abstain" => Choice::Abstain,
                "object" => {
                    answers.objections.insert(id);
                    continue;
                }
                "silent" => continue,
                _ => panic!("bad answer {token}"),
            };
            answers.votes.insert(id, vote);
        }
    }
    answers
}

/// Evaluates `rule` on the answer text and checks the outcome.
#[track_caller]
fn check(
    rule: &Rule,
    electorate: &Electorate,
    text: &str,
    moment: Moment,
    expected: Outcome,
) -> Evaluation {
    let evaluation = evaluate(rule, electorate, &answers(electorate, text), moment);
    assert_eq!(
        evaluation.outcome, expected,
        "answers {text:?} at {moment:?}\ntally: {:#?}",
        evaluation.tally
    );
    evaluation
}

/// The answer text `rest`, followed by a yes from each of `yes`.
fn text(yes: &[&MemberId], rest: &str) -> String {
    let mut text = rest.to_owned();
    for id in yes {
        text.push_str(&format!(" {id}=yes"));
    }
    text
}

/// Every subset of `items` of exactly `size` elements.
fn subsets<T: Clone>(items: &[T], size: usize) -> Vec<Vec<T>> {
    (0u32..1 << items.len())
        .filter(|mask| mask.count_ones() as usize == size)
        .map(|mask| {
            items
                .iter()
                .enumerate()
                .filter(|(index, _)| mask & (1 << index) != 0)
                .map(|(_, item)| item.clone())
                .collect()
        })
        .collect()
}

/// A share in percent with two decimals, rounded half up, as text: `33.63`.
fn percent(value: u64, base: u64) -> String {
    let hundredths = (value * 10_000 + base / 2) / base;
    format!("{}.{:02}", hundredths / 100, hundredths % 100)
}

// ---------------------------------------------------------------------------------------------
// IT-Planungsrat resolution on the 2016 Königstein key

mod it_planungsrat_resolution {
    use super::*;

    fn laender() -> Vec<MemberId> {
        koenigstein().into_keys().collect()
    }

    #[test]
    fn the_key_sums_to_exactly_one_hundred_percent() {
        assert_eq!(koenigstein().values().sum::<u64>(), 10_000_000);
        assert_eq!(koenigstein().len(), 16);
    }

    #[test]
    fn of_4368_sets_of_eleven_laender_exactly_2586_adopt() {
        let rule = preset(Preset::ItPlanungsratResolution);
        let electorate = it_planungsrat();
        let sets = subsets(&laender(), 11);
        assert_eq!(sets.len(), 4368);
        let adopting = sets
            .iter()
            .filter(|set| {
                let yes: Vec<&MemberId> = set.iter().collect();
                let answers = answers(&electorate, &text(&yes, "*=abstain DE=yes"));
                evaluate(&rule, &electorate, &answers, AtDeadline).outcome == ADOPTED
            })
            .count();
        assert_eq!(adopting, 2586);
    }

    #[test]
    fn the_eleven_smallest_hold_33_63_and_the_eleven_largest_90_57_percent() {
        let rule = preset(Preset::ItPlanungsratResolution);
        let electorate = it_planungsrat();
        let mut by_weight: Vec<(u64, MemberId)> = koenigstein()
            .into_iter()
            .map(|(land, weight)| (weight, land))
            .collect();
        by_weight.sort();
        let smallest: Vec<&MemberId> = by_weight[..11].iter().map(|(_, land)| land).collect();
        let largest: Vec<&MemberId> = by_weight[5..].iter().map(|(_, land)| land).collect();
        for (yes, expected_outcome, expected_share) in
            [(smallest, REJECTED, "33.63"), (largest, ADOPTED, "90.57")]
        {
            let evaluation = check(
                &rule,
                &electorate,
                &text(&yes, "DE=yes"),
                AtDeadline,
                expected_outcome,
            );
            let share = &evaluation.tally.requirements[2];
            assert_eq!(percent(share.value, share.base), expected_share);
            assert_eq!(share.base, 10_000_000);
        }
    }

    #[test]
    fn the_tally_names_each_requirement() {
        let rule = preset(Preset::ItPlanungsratResolution);
        let evaluation = check(
            &rule,
            &it_planungsrat(),
            "*=yes DE-NW=no DE-BY=no",
            AtDeadline,
            REJECTED,
        );
        let tally = &evaluation.tally;
        let rows: Vec<(&str, u64, u64, bool)> = tally
            .requirements
            .iter()
            .map(|row| (row.description.as_str(), row.value, row.base, row.met))
            .collect();
        assert_eq!(
            rows,
            [
                ("yes from DE", 1, 1, true),
                ("at least 11 yes among group laender", 14, 16, true),
                (
                    "yes share by weight in koenigstein among group laender >= 2/3 of all members",
                    6_332_249,
                    10_000_000,
                    false
                ),
            ]
        );
        assert_eq!(
            (
                tally.yes,
                tally.no,
                tally.abstain,
                tally.silent,
                tally.taking_part
            ),
            (15, 2, 0, 0, 17)
        );
    }

    #[test]
    fn nw_with_by_or_with_bw_blocks_on_weight_alone() {
        let rule = preset(Preset::ItPlanungsratResolution);
        let electorate = it_planungsrat();
        for (blockers, blocking_share) in [
            ("DE-NW=no DE-BY=no", "36.68"),
            ("DE-NW=no DE-BW=no", "34.11"),
        ] {
            let evaluation = check(
                &rule,
                &electorate,
                &format!("*=yes {blockers}"),
                AtDeadline,
                REJECTED,
            );
            let [mandatory, headcount, share] = &evaluation.tally.requirements[..] else {
                panic!("three requirements")
            };
            assert!(mandatory.met && headcount.met && !share.met);
            assert_eq!(
                percent(share.base - share.value, share.base),
                blocking_share
            );
        }
    }

    #[test]
    fn any_six_laender_block_on_headcount() {
        let rule = preset(Preset::ItPlanungsratResolution);
        let electorate = it_planungsrat();
        for set in subsets(&laender(), 6) {
            let mut answers = answers(&electorate, "*=yes");
            for land in &set {
                answers.votes.insert(land.clone(), Choice::No);
            }
            let evaluation = evaluate(&rule, &electorate, &answers, AtDeadline);
            assert_eq!(evaluation.outcome, REJECTED, "{set:?}");
            assert!(!evaluation.tally.requirements[1].met, "{set:?}");
        }
    }

    #[test]
    fn the_bund_must_vote_yes() {
        let rule = preset(Preset::ItPlanungsratResolution);
        let electorate = it_planungsrat();
        check(&rule, &electorate, "*=yes", AtDeadline, ADOPTED);
        check(&rule, &electorate, "*=yes DE=no", AtDeadline, REJECTED);
        check(&rule, &electorate, "*=yes DE=abstain", AtDeadline, REJECTED);
        check(&rule, &electorate, "*=yes DE=silent", AtDeadline, REJECTED);
    }

    #[test]
    fn abstention_and_silence_are_not_yes_but_do_not_count_against() {
        let rule = preset(Preset::ItPlanungsratResolution);
        let electorate = it_planungsrat();
        // The five smallest Länder (HB, SL, MV, TH, HH) stay away; the other 11 hold 90.57 %.
        let evaluation = check(
            &rule,
            &electorate,
            "*=yes DE-HB=abstain DE-SL=silent DE-MV=silent DE-TH=abstain DE-HH=silent",
            AtDeadline,
            ADOPTED,
        );
        assert_eq!(
            (
                evaluation.tally.yes,
                evaluation.tally.abstain,
                evaluation.tally.silent
            ),
            (12, 5, 3)
        );
    }

    #[test]
    fn exactly_two_thirds_adopts_and_one_unit_less_rejects() {
        // A made-up key: the first 11 Länder hold 2 each (22), the other five 2, 2, 2, 2, 3
        // (11), so the 11 hold exactly 22/33. No real table has a set at exactly two thirds.
        let laender = laender();
        let exact: BTreeMap<MemberId, u64> = laender
            .iter()
            .enumerate()
            .map(|(index, land)| (land.clone(), if index == 15 { 3 } else { 2 }))
            .collect();
        // One unit moves from the yes side to the last Land: 21/33.
        let mut below = exact.clone();
        *below.get_mut(&laender[0]).unwrap() = 1;
        *below.get_mut(&laender[15]).unwrap() = 4;
        let yes: Vec<&MemberId> = laender[..11].iter().collect();
        let answer_text = text(&yes, "*=no DE=yes");
        let rule = preset(Preset::ItPlanungsratResolution);
        let evaluation = check(
            &rule,
            &it_planungsrat_with(&exact),
            &answer_text,
            AtDeadline,
            ADOPTED,
        );
        assert_eq!(
            (
                evaluation.tally.requirements[2].value,
                evaluation.tally.requirements[2].base
            ),
            (22, 33)
        );
        check(
            &rule,
            &it_planungsrat_with(&below),
            &answer_text,
            AtDeadline,
            REJECTED,
        );

        // "More than" two thirds is not met at exactly two thirds: a tie fails.
        let mut more_than = rule;
        if let Requirement::YesShare { comparison, .. } = &mut more_than.requirements[2] {
            *comparison = Comparison::MoreThan;
        }
        check(
            &more_than,
            &it_planungsrat_with(&exact),
            &answer_text,
            AtDeadline,
            REJECTED,
        );
    }

    #[test]
    fn the_nearest_shares_above_two_thirds_are_those_of_domain_md() {
        let key: Vec<u64> = koenigstein().into_values().collect();
        let mut nearest_any = u64::MAX;
        let mut nearest_eleven = u64::MAX;
        for mask in 0u32..1 << 16 {
            let share: u64 = (0..16)
                .filter(|index| mask & (1 << index) != 0)
                .map(|index| key[index])
                .sum();
            assert_ne!(share * 3, 20_000_000, "no set holds exactly two thirds");
            if share * 3 > 20_000_000 {
                nearest_any = nearest_any.min(share);
                if mask.count_ones() >= 11 {
                    nearest_eleven = nearest_eleven.min(share);
                }
            }
        }
        assert_eq!((nearest_eleven, nearest_any), (6_666_922, 6_666_743));
    }

    #[test]
    fn one_objection_ends_it_and_nothing_closes_it_early() {
        let rule = preset(Preset::ItPlanungsratResolution);
        let electorate = it_planungsrat();
        check(
            &rule,
            &electorate,
            "*=yes DE-BY=object",
            BeforeDeadline,
            OBJECTED,
        );
        check(&rule, &electorate, "DE-BY=object", AtDeadline, OBJECTED);
        // Certain or not, every answer is awaited.
        check(&rule, &electorate, "DE=no", BeforeDeadline, PENDING);
        check(
            &rule,
            &electorate,
            "*=yes DE-HB=silent",
            BeforeDeadline,
            PENDING,
        );
        // Once everyone has answered it closes.
        check(&rule, &electorate, "*=yes", BeforeDeadline, ADOPTED);
    }

    #[test]
    fn the_recommendation_needs_more_yes_than_no_among_those_taking_part() {
        let rule = preset(Preset::ItPlanungsratRecommendation);
        let electorate = it_planungsrat();
        check(
            &rule,
            &electorate,
            "DE=yes DE-BY=yes DE-NW=no",
            AtDeadline,
            ADOPTED,
        );
        check(&rule, &electorate, "DE=yes DE-NW=no", AtDeadline, REJECTED);
        check(&rule, &electorate, "*=abstain DE=yes", AtDeadline, ADOPTED);
        check(&rule, &electorate, "*=abstain", AtDeadline, REJECTED);
        check(&rule, &electorate, "", AtDeadline, REJECTED);
        check(&rule, &electorate, "*=yes", BeforeDeadline, ADOPTED);
        check(
            &rule,
            &electorate,
            "DE=yes DE-BY=yes",
            BeforeDeadline,
            PENDING,
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Bundesrat

mod bundesrat {
    use super::*;

    const THIRTY_FIVE: &str =
        "*=no DE-BW=yes DE-BY=yes DE-NI=yes DE-NW=yes DE-HE=yes DE-HB=yes DE-HH=yes";
    const THIRTY_FOUR: &str =
        "*=no DE-BW=yes DE-BY=yes DE-NI=yes DE-NW=yes DE-BE=yes DE-HB=yes DE-HH=yes";

    #[test]
    fn the_table_has_69_votes() {
        assert_eq!(weights(BUNDESRAT_VOTES).values().sum::<u64>(), 69);
    }

    #[test]
    fn thirty_five_of_69_adopt_and_34_reject() {
        let rule = preset(Preset::Bundesrat);
        let electorate = bundesrat();
        let evaluation = check(&rule, &electorate, THIRTY_FIVE, AtDeadline, ADOPTED);
        assert_eq!(
            (
                evaluation.tally.requirements[0].value,
                evaluation.tally.requirements[0].base
            ),
            (35, 69)
        );
        check(&rule, &electorate, THIRTY_FOUR, AtDeadline, REJECTED);
        // Abstention and silence work as no.
        check(
            &rule,
            &electorate,
            &THIRTY_FIVE.replace("*=no", "*=abstain"),
            AtDeadline,
            ADOPTED,
        );
        check(
            &rule,
            &electorate,
            &THIRTY_FOUR.replace("*=no", "*=silent"),
            AtDeadline,
            REJECTED,
        );
    }

    #[test]
    fn a_constitutional_change_needs_46() {
        let params = PresetParams {
            constitutional: Some(true),
            ..PresetParams::default()
        };
        let rule = Preset::Bundesrat.rule(&params).unwrap();
        let electorate = bundesrat();
        check(&rule, &electorate, THIRTY_FIVE, AtDeadline, REJECTED);
        let forty_six = "*=no DE-BW=yes DE-BY=yes DE-NI=yes DE-NW=yes DE-BE=yes DE-BB=yes DE-RP=yes DE-SN=yes DE-HB=yes DE-HH=yes";
        let forty_five = "*=no DE-BW=yes DE-BY=yes DE-NI=yes DE-NW=yes DE-HE=yes DE-BE=yes DE-BB=yes DE-RP=yes DE-SN=yes";
        check(&rule, &electorate, forty_six, AtDeadline, ADOPTED);
        check(&rule, &electorate, forty_five, AtDeadline, REJECTED);
    }

    #[test]
    fn it_closes_as_soon_as_35_votes_are_in_or_out_of_reach() {
        let rule = preset(Preset::Bundesrat);
        let electorate = bundesrat();
        let yes_only = THIRTY_FIVE.replace("*=no ", "");
        check(&rule, &electorate, &yes_only, BeforeDeadline, ADOPTED);
        let no_only = THIRTY_FIVE.replace("*=no ", "").replace("=yes", "=no");
        check(&rule, &electorate, &no_only, BeforeDeadline, REJECTED);
        check(
            &rule,
            &electorate,
            &THIRTY_FOUR.replace("*=no ", ""),
            BeforeDeadline,
            PENDING,
        );
    }
}

// ---------------------------------------------------------------------------------------------
// EU Council, qualified majority and silence procedure

mod eu {
    use super::*;

    /// The eight large states and `small` of the small ones vote yes; the rest as `rest`.
    fn large_and_small(small: usize, rest: &str) -> String {
        let electorate = eu();
        let small_states: Vec<&MemberId> = electorate
            .members
            .iter()
            .filter(|(_, elector)| elector.weights[&table("population")] == Weight(1))
            .map(|(id, _)| id)
            .take(small)
            .collect();
        let large = "DE=yes FR=yes IT=yes ES=yes PL=yes RO=yes NL=yes BE=yes";
        format!("*={rest} {large} {}", text(&small_states, ""))
    }

    #[test]
    fn fifteen_states_with_65_percent_adopt() {
        let rule = preset(Preset::EuQualifiedMajority);
        let electorate = eu();
        // 8 large + 7 small: 15 states, 88 %.
        check(
            &rule,
            &electorate,
            &large_and_small(7, "no"),
            AtDeadline,
            ADOPTED,
        );
        // 8 large + 6 small: 14 states are fewer than 55 %.
        check(
            &rule,
            &electorate,
            &large_and_small(6, "no"),
            AtDeadline,
            REJECTED,
        );
        // DE FR ES PL and 11 small: 15 states holding exactly 65 %.
        let exactly =
            "*=yes IT=no RO=no NL=no BE=no AT=no BG=no CY=no CZ=no DK=no EE=no FI=no GR=no";
        let evaluation = check(&rule, &electorate, exactly, AtDeadline, ADOPTED);
        assert_eq!(evaluation.tally.yes, 15);
        assert_eq!(
            (
                evaluation.tally.requirements[1].alternatives[0].value,
                evaluation.tally.requirements[1].alternatives[0].base
            ),
            (65, 100)
        );
        // DE FR ES RO and 11 small: 15 states holding 62 %.
        check(
            &rule,
            &electorate,
            "*=yes IT=no PL=no NL=no BE=no AT=no BG=no CY=no CZ=no DK=no EE=no FI=no GR=no",
            AtDeadline,
            REJECTED,
        );
    }

    #[test]
    fn fewer_than_four_states_failing_to_vote_yes_adopt_whatever_the_population() {
        let rule = preset(Preset::EuQualifiedMajority);
        let electorate = eu();
        // DE, FR and IT hold 47 %: the other 24 hold only 53 %, but a blocking minority needs 4.
        check(
            &rule,
            &electorate,
            "*=yes DE=no FR=no IT=no",
            AtDeadline,
            ADOPTED,
        );
        check(
            &rule,
            &electorate,
            "*=yes DE=abstain FR=silent IT=no",
            AtDeadline,
            ADOPTED,
        );
        check(
            &rule,
            &electorate,
            "*=yes DE=no FR=no IT=no ES=no",
            AtDeadline,
            REJECTED,
        );
        check(
            &rule,
            &electorate,
            "*=yes DE=no FR=no IT=no ES=silent",
            AtDeadline,
            REJECTED,
        );
    }

    #[test]
    fn the_reinforced_majority_needs_72_percent_of_the_states() {
        let params = PresetParams {
            reinforced: Some(true),
            ..PresetParams::default()
        };
        let rule = Preset::EuQualifiedMajority.rule(&params).unwrap();
        let electorate = eu();
        // 8 large + 12 small = 20 states (74 %), 93 % of the population.
        check(
            &rule,
            &electorate,
            &large_and_small(12, "no"),
            AtDeadline,
            ADOPTED,
        );
        // 19 states (70 %).
        check(
            &rule,
            &electorate,
            &large_and_small(11, "no"),
            AtDeadline,
            REJECTED,
        );
        // 15 states with 88 %, enough for the ordinary majority.
        check(
            &rule,
            &electorate,
            &large_and_small(7, "no"),
            AtDeadline,
            REJECTED,
        );
        // The four-state clause is not part of the reinforced majority (Art. 238 (2) TFEU).
        check(
            &rule,
            &electorate,
            "*=yes DE=no FR=no IT=no",
            AtDeadline,
            REJECTED,
        );
    }

    #[test]
    fn the_qualified_majority_closes_early_once_certain() {
        let rule = preset(Preset::EuQualifiedMajority);
        let electorate = eu();
        check(
            &rule,
            &electorate,
            &large_and_small(7, "silent"),
            BeforeDeadline,
            ADOPTED,
        );
        check(
            &rule,
            &electorate,
            &large_and_small(6, "silent"),
            BeforeDeadline,
            PENDING,
        );
        // 13 states against: 55 % of the states is out of reach.
        check(
            &rule,
            &electorate,
            "DE=no FR=no IT=no ES=no PL=no RO=no NL=no BE=no AT=no BG=no CY=no CZ=no DK=no",
            BeforeDeadline,
            REJECTED,
        );
    }

    #[test]
    fn silence_procedure_adopts_at_the_deadline_unless_someone_objects() {
        let rule = preset(Preset::EuSilence);
        let electorate = eu();
        check(&rule, &electorate, "", AtDeadline, ADOPTED);
        check(&rule, &electorate, "", BeforeDeadline, PENDING);
        check(
            &rule,
            &electorate,
            "*=yes DE=silent",
            BeforeDeadline,
            PENDING,
        );
        check(&rule, &electorate, "MT=object", BeforeDeadline, OBJECTED);
        check(&rule, &electorate, "MT=object", AtDeadline, OBJECTED);
        // A vote does not break the silence; an objection does.
        check(&rule, &electorate, "DE=no FR=abstain", AtDeadline, ADOPTED);
        let evaluation = check(&rule, &electorate, "DE=yes", AtDeadline, ADOPTED);
        assert_eq!((evaluation.tally.yes, evaluation.tally.silent), (27, 26));
    }
}

// ---------------------------------------------------------------------------------------------
// Supervisory board, unanimity, and the smaller presets

mod other_presets {
    use super::*;

    #[test]
    fn silence_can_fail_the_board_quorum_where_no_votes_would_not() {
        let rule = preset(Preset::SupervisoryBoard);
        let electorate = board(5);
        let evaluation = check(&rule, &electorate, "B1=yes B2=yes", AtDeadline, NO_QUORUM);
        assert_eq!(
            (
                evaluation.tally.taking_part,
                evaluation.tally.quorum_required
            ),
            (2, Some(3))
        );
        check(
            &rule,
            &electorate,
            "B1=yes B2=yes B3=no B4=no B5=no",
            AtDeadline,
            REJECTED,
        );
        check(
            &rule,
            &electorate,
            "B1=yes B2=yes B3=no",
            AtDeadline,
            ADOPTED,
        );
        check(
            &rule,
            &electorate,
            "B1=yes B2=yes B3=no B4=no",
            AtDeadline,
            REJECTED,
        );
        // Abstainers take part for the quorum but are left out of the majority.
        check(
            &rule,
            &electorate,
            "B1=yes B2=abstain B3=abstain",
            AtDeadline,
            ADOPTED,
        );
        check(
            &rule,
            &electorate,
            "B1=abstain B2=abstain B3=abstain",
            AtDeadline,
            REJECTED,
        );
        // Half of 7 rounds up to 4; a board of 4 still needs 3.
        check(
            &rule,
            &board(7),
            "B1=yes B2=yes B3=yes",
            AtDeadline,
            NO_QUORUM,
        );
        check(&rule, &board(4), "B1=yes B2=yes", AtDeadline, NO_QUORUM);
    }

    #[test]
    fn a_board_member_may_object_until_it_answers() {
        let rule = preset(Preset::SupervisoryBoard);
        let electorate = board(5);
        check(
            &rule,
            &electorate,
            "B1=yes B2=yes B3=yes",
            BeforeDeadline,
            PENDING,
        );
        check(
            &rule,
            &electorate,
            "B1=yes B2=yes B3=yes B4=object",
            BeforeDeadline,
            OBJECTED,
        );
        check(&rule, &electorate, "*=no B1=yes", BeforeDeadline, REJECTED);
        // Without objections the outcome can be certain before everyone answered.
        let mut rule = rule;
        rule.objection = Objection::NotAvailable;
        check(
            &rule,
            &electorate,
            "B1=yes B2=yes B3=yes",
            BeforeDeadline,
            ADOPTED,
        );
        check(
            &rule,
            &electorate,
            "B1=yes B2=no B3=no",
            BeforeDeadline,
            PENDING,
        );
        check(
            &rule,
            &electorate,
            "B1=no B2=no B3=no",
            BeforeDeadline,
            REJECTED,
        );
        // Not monotone: on a board of 4 (quorum 3) after two no, the other two voting yes only
        // tie, so no answer can adopt; yet silence fails the quorum where a no rejects. Bounds
        // from "all yes" and "all no" would both say rejected; the outcome is not certain.
        let small_board = board(4);
        check(&rule, &small_board, "B1=no B2=no", BeforeDeadline, PENDING);
        check(&rule, &small_board, "B1=no B2=no", AtDeadline, NO_QUORUM);
        check(
            &rule,
            &small_board,
            "B1=no B2=no B3=no",
            AtDeadline,
            REJECTED,
        );
        check(
            &rule,
            &small_board,
            "B1=no B2=no B3=yes B4=yes",
            AtDeadline,
            REJECTED,
        );
    }

    #[test]
    fn one_no_defeats_unanimity_at_once() {
        let rule = preset(Preset::Unanimity);
        let electorate = it_planungsrat();
        check(&rule, &electorate, "DE-SL=no", BeforeDeadline, REJECTED);
        check(&rule, &electorate, "DE-SL=no", AtDeadline, REJECTED);
        check(
            &rule,
            &electorate,
            "DE-SL=abstain",
            BeforeDeadline,
            REJECTED,
        );
        check(
            &rule,
            &electorate,
            "*=yes DE-SL=silent",
            BeforeDeadline,
            PENDING,
        );
        check(
            &rule,
            &electorate,
            "*=yes DE-SL=silent",
            AtDeadline,
            REJECTED,
        );
        let evaluation = check(
            &rule,
            &electorate,
            "*=yes DE-SL=silent",
            AtDeadline,
            REJECTED,
        );
        assert_eq!(evaluation.tally.blocking, 1);
        check(&rule, &electorate, "*=yes", BeforeDeadline, ADOPTED);
    }

    #[test]
    fn simple_majority_counts_votes_cast() {
        let rule = preset(Preset::SimpleMajority);
        let electorate = board(5);
        check(
            &rule,
            &electorate,
            "B1=yes B2=abstain B3=abstain",
            AtDeadline,
            ADOPTED,
        );
        check(&rule, &electorate, "B1=yes B2=no", AtDeadline, REJECTED);
        check(
            &rule,
            &electorate,
            "B1=yes B2=yes B3=yes",
            BeforeDeadline,
            ADOPTED,
        );
        check(
            &rule,
            &electorate,
            "B1=yes B2=yes B3=no",
            BeforeDeadline,
            PENDING,
        );
        check(
            &rule,
            &electorate,
            "B1=no B2=no B3=no",
            BeforeDeadline,
            REJECTED,
        );
        // Where votes may change until the close, cast votes are outstanding too.
        let mut changeable = rule;
        changeable.vote_change = VoteChange::UntilClose;
        check(
            &changeable,
            &electorate,
            "B1=yes B2=yes B3=yes",
            BeforeDeadline,
            PENDING,
        );
        check(&changeable, &electorate, "*=yes", BeforeDeadline, ADOPTED);
    }

    #[test]
    fn two_thirds_of_members_counts_everyone() {
        let rule = preset(Preset::TwoThirdsOfMembers);
        let electorate = board(6);
        check(
            &rule,
            &electorate,
            "B1=yes B2=yes B3=yes B4=yes",
            AtDeadline,
            ADOPTED,
        );
        check(
            &rule,
            &electorate,
            "B1=yes B2=yes B3=yes",
            AtDeadline,
            REJECTED,
        );
        check(
            &rule,
            &electorate,
            "B1=yes B2=yes B3=yes B4=yes",
            BeforeDeadline,
            ADOPTED,
        );
        check(
            &rule,
            &electorate,
            "B1=no B2=abstain B3=no",
            BeforeDeadline,
            REJECTED,
        );
        check(&rule, &electorate, "B1=no B2=no", BeforeDeadline, PENDING);
    }
}

// ---------------------------------------------------------------------------------------------
// How one answer counts: the table in the documentation of `rule`, row by row

mod counting {
    use super::*;

    /// Where one answer landed: (yes, against, all members, taking part, votes cast, quorum,
    /// blocking), read off the tally of a one-member electorate at the deadline.
    type Row = (u64, u64, u64, u64, u64, u32, u32);

    #[track_caller]
    fn check_row(answer: &str, abstention: Abstention, silence: Silence, expected: Row) {
        let share = |base| Requirement::YesShare {
            among: Scope::Electorate,
            weighting: Weighting::Heads,
            base,
            comparison: Comparison::AtLeast,
            fraction: Fraction::new(0, 1).unwrap(),
        };
        let rule = Rule {
            electorate: ElectorateSpec::VotingMembers,
            requirements: vec![
                share(ShareBase::AllMembers),
                share(ShareBase::TakingPart),
                share(ShareBase::VotesCast),
                Requirement::MaxAgainst {
                    among: Scope::Electorate,
                    at_most: 1,
                },
            ],
            abstention,
            silence,
            objection: Objection::NotAvailable,
            quorum: None,
            vote_change: VoteChange::Never,
            early_close: EarlyClose::OnCertainty,
        };
        let electorate = board(1);
        let tally = evaluate(
            &rule,
            &electorate,
            &answers(&electorate, &format!("B1={answer}")),
            AtDeadline,
        )
        .tally;
        let [all, taking_part, votes_cast, against] = &tally.requirements[..] else {
            panic!("four requirements")
        };
        let row = (
            all.value,
            against.value,
            all.base,
            taking_part.base,
            votes_cast.base,
            tally.taking_part,
            tally.blocking,
        );
        assert_eq!(
            row, expected,
            "{answer} with {abstention:?} abstention and {silence:?} silence"
        );
    }

    #[test]
    fn every_answer_counts_as_the_table_says() {
        use Abstention::{Blocks as AbstentionBlocks, Excluded, NotYes as AbstentionNotYes};
        use Silence::{
            Absent, Abstention as AsAbstention, Blocks as SilenceBlocks, Consent,
            NotYes as SilenceNotYes,
        };
        //                                                      yes against all part cast quorum blocking
        check_row("yes", Excluded, Absent, (1, 0, 1, 1, 1, 1, 0));
        check_row("no", Excluded, Absent, (0, 1, 1, 1, 1, 1, 0));
        check_row("abstain", Excluded, Absent, (0, 0, 1, 0, 0, 1, 0));
        check_row("abstain", AbstentionNotYes, Absent, (0, 1, 1, 1, 0, 1, 0));
        check_row("abstain", AbstentionBlocks, Absent, (0, 0, 1, 0, 0, 1, 1));
        check_row("silent", Excluded, AsAbstention, (0, 0, 1, 0, 0, 0, 0));
        check_row(
            "silent",
            AbstentionNotYes,
            AsAbstention,
            (0, 1, 1, 1, 0, 0, 0),
        );
        check_row(
            "silent",
            AbstentionBlocks,
            AsAbstention,
            (0, 0, 1, 0, 0, 0, 1),
        );
        check_row("silent", Excluded, SilenceNotYes, (0, 1, 1, 1, 0, 0, 0));
        check_row("silent", Excluded, Consent, (1, 0, 1, 1, 1, 0, 0));
        check_row("silent", Excluded, Absent, (0, 0, 1, 0, 0, 0, 0));
        check_row("silent", Excluded, SilenceBlocks, (0, 0, 1, 0, 0, 0, 1));
    }

    #[test]
    fn before_the_deadline_silence_is_not_yet_resolved() {
        let rule = preset(Preset::EuSilence);
        let electorate = board(3);
        let tally = evaluate(
            &rule,
            &electorate,
            &answers(&electorate, "B1=no"),
            BeforeDeadline,
        )
        .tally;
        assert_eq!(
            (tally.yes, tally.no, tally.silent, tally.taking_part),
            (0, 1, 2, 1)
        );
        let tally = evaluate(
            &rule,
            &electorate,
            &answers(&electorate, "B1=no"),
            AtDeadline,
        )
        .tally;
        assert_eq!(
            (tally.yes, tally.no, tally.silent, tally.taking_part),
            (2, 1, 2, 1)
        );
    }

    #[test]
    fn answers_from_outside_the_electorate_and_unavailable_objections_are_disregarded() {
        let rule = preset(Preset::SimpleMajority);
        let electorate = board(3);
        let mut given = answers(&electorate, "B1=yes B2=object");
        given.votes.insert(member("X9"), Choice::No);
        given.objections.insert(member("X9"));
        let evaluation = evaluate(&rule, &electorate, &given, AtDeadline);
        assert_eq!(evaluation.outcome, ADOPTED);
        assert_eq!(
            (
                evaluation.tally.yes,
                evaluation.tally.no,
                evaluation.tally.silent,
                evaluation.tally.objected
            ),
            (1, 0, 2, 1)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Presets and validation

mod presets_and_validation {
    use super::*;

    #[test]
    fn presets_have_the_names_of_domain_md() {
        let names: Vec<&str> = Preset::ALL.iter().map(|preset| preset.name()).collect();
        assert_eq!(
            names,
            [
                "it-planungsrat-resolution",
                "it-planungsrat-recommendation",
                "unanimity",
                "simple-majority",
                "two-thirds-of-members",
                "bundesrat",
                "eu-qualified-majority",
                "eu-silence",
                "supervisory-board",
            ]
        );
        for preset in Preset::ALL {
            assert_eq!(preset.name().parse::<Preset>(), Ok(preset));
            assert_eq!(
                serde_json::to_value(preset).unwrap(),
                serde_json::json!(preset.name())
            );
            assert_eq!(
                serde_json::from_value::<Preset>(serde_json::json!(preset.name())).unwrap(),
                preset
            );
            let rule = preset.rule(&PresetParams::default()).unwrap();
            let json = serde_json::to_string(&rule).unwrap();
            assert_eq!(
                serde_json::from_str::<Rule>(&json).unwrap(),
                rule,
                "{preset}"
            );
        }
        assert!("majority".parse::<Preset>().is_err());
    }

    #[test]
    fn the_resolution_rule_is_frozen_as_this_json() {
        assert_eq!(
            serde_json::to_value(preset(Preset::ItPlanungsratResolution)).unwrap(),
            serde_json::json!({
                "electorate": {"kind": "voting_members"},
                "requirements": [
                    {"kind": "mandatory_yes", "members": ["DE"]},
                    {"kind": "min_yes", "among": {"kind": "group", "group": "laender"}, "at_least": 11},
                    {
                        "kind": "yes_share",
                        "among": {"kind": "group", "group": "laender"},
                        "weighting": {"kind": "table", "table": "koenigstein"},
                        "base": "all_members",
                        "comparison": "at_least",
                        "fraction": "2/3"
                    }
                ],
                "abstention": "not_yes",
                "silence": "abstention",
                "objection": "ends_procedure",
                "vote_change": "until_close",
                "early_close": "never"
            })
        );
    }

    #[test]
    fn preset_parameters_are_optional_named_and_checked() {
        let params: PresetParams = serde_json::from_str(
            r#"{"federal_member": "DE", "states_group": "laender", "weight_table": "ks-2024"}"#,
        )
        .unwrap();
        let rule = Preset::ItPlanungsratResolution.rule(&params).unwrap();
        assert!(serde_json::to_string(&rule).unwrap().contains("ks-2024"));
        assert!(serde_json::from_str::<PresetParams>(r#"{"reinforce": true}"#).is_err());
        assert_eq!(
            serde_json::to_string(&PresetParams::default()).unwrap(),
            "{}"
        );
        let misplaced = PresetParams {
            reinforced: Some(true),
            ..PresetParams::default()
        };
        let error = Preset::Bundesrat.rule(&misplaced).unwrap_err();
        assert_eq!(error.code(), "unused_preset_parameter");
        assert_eq!(
            error.to_string(),
            "preset bundesrat does not use parameter reinforced"
        );
        assert!(Preset::EuQualifiedMajority.rule(&misplaced).is_ok());
    }

    #[test]
    fn presets_fit_their_bodies() {
        let it_planungsrat = it_planungsrat();
        for preset in [
            Preset::ItPlanungsratResolution,
            Preset::ItPlanungsratRecommendation,
            Preset::Unanimity,
            Preset::SimpleMajority,
            Preset::TwoThirdsOfMembers,
            Preset::EuSilence,
        ] {
            assert_eq!(
                super::preset(preset).validate(&it_planungsrat),
                Ok(()),
                "{preset}"
            );
        }
        assert_eq!(preset(Preset::Bundesrat).validate(&bundesrat()), Ok(()));
        assert_eq!(preset(Preset::EuQualifiedMajority).validate(&eu()), Ok(()));
        assert_eq!(preset(Preset::SupervisoryBoard).validate(&board(3)), Ok(()));
    }

    #[track_caller]
    fn check_invalid(rule: &Rule, electorate: &Electorate, code: &str) {
        match rule.validate(electorate) {
            Ok(()) => panic!("expected {code}, the rule is valid"),
            Err(error) => assert_eq!(error.code(), code, "{error}"),
        }
    }

    fn with_requirement(requirement: Requirement) -> Rule {
        let mut rule = preset(Preset::ItPlanungsratResolution);
        rule.requirements.push(requirement);
        rule
    }

    #[test]
    fn validation_names_what_is_wrong() {
        let electorate = it_planungsrat();
        let resolution = preset(Preset::ItPlanungsratResolution);
        let with = |params: PresetParams| Preset::ItPlanungsratResolution.rule(&params).unwrap();

        check_invalid(&resolution, &Electorate::default(), "empty_electorate");
        check_invalid(
            &with(PresetParams {
                federal_member: Some(member("FR")),
                ..PresetParams::default()
            }),
            &electorate,
            "unknown_member",
        );
        check_invalid(
            &with(PresetParams {
                states_group: Some(group("kommunal")),
                ..PresetParams::default()
            }),
            &electorate,
            "unknown_group",
        );
        check_invalid(
            &with(PresetParams {
                weight_table: Some(table("population")),
                ..PresetParams::default()
            }),
            &electorate,
            "unknown_table",
        );
        let mut missing = electorate.clone();
        missing
            .members
            .get_mut(&member("DE-BY"))
            .unwrap()
            .weights
            .clear();
        check_invalid(&resolution, &missing, "missing_weight");
        let zero = it_planungsrat_with(&koenigstein().into_keys().map(|land| (land, 0)).collect());
        check_invalid(&resolution, &zero, "zero_total_weight");
        // The Bund has no Königstein share, and needs none outside the Länder's scope.
        assert_eq!(resolution.validate(&electorate), Ok(()));

        let laender = Scope::Group {
            group: group("laender"),
        };
        check_invalid(
            &with_requirement(Requirement::MinYes {
                among: laender,
                at_least: 17,
            }),
            &electorate,
            "min_yes_out_of_range",
        );
        check_invalid(
            &with_requirement(Requirement::MaxAgainst {
                among: Scope::Electorate,
                at_most: 18,
            }),
            &electorate,
            "max_against_out_of_range",
        );
        check_invalid(
            &with_requirement(Requirement::AnyOf {
                alternatives: vec![],
            }),
            &electorate,
            "empty_any_of",
        );
        check_invalid(
            &with_requirement(Requirement::AnyOf {
                alternatives: vec![Requirement::MandatoryYes {
                    members: members(&["FR"]),
                }],
            }),
            &electorate,
            "unknown_member",
        );
        check_invalid(
            &with_requirement(Requirement::MandatoryYes {
                members: BTreeSet::new(),
            }),
            &electorate,
            "empty_members",
        );
        check_invalid(
            &preset(Preset::SupervisoryBoard),
            &board(2),
            "quorum_unreachable",
        );

        let mut listed = preset(Preset::Unanimity);
        listed.electorate = ElectorateSpec::Members {
            members: members(&["DE", "DE-BY"]),
        };
        check_invalid(&listed, &electorate, "unselected_elector");
        let mut grouped = preset(Preset::Unanimity);
        grouped.electorate = ElectorateSpec::Group {
            group: group("laender"),
        };
        check_invalid(&grouped, &electorate, "unselected_elector");
    }
}

// ---------------------------------------------------------------------------------------------
// Properties

mod properties {
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;
    use proptest::sample::{select, subsequence};

    const TABLES: [&str; 4] = ["koenigstein", "bundesrat", "population", "w"];
    const SMALL_IDS: [&str; 6] = ["DE", "M1", "M2", "M3", "M4", "M5"];

    /// One elector's answer, before completion: 0 none, 1 yes, 2 no, 3 abstain, 4 object.
    type Code = u8;

    fn ids(names: &[&str]) -> Vec<MemberId> {
        names.iter().map(|name| member(name)).collect()
    }

    /// Up to six electors `DE`, `M1`, … in random groups with random weights (zeros included).
    fn small_electorate() -> impl Strategy<Value = Electorate> {
        vec(
            (any::<bool>(), any::<bool>(), vec(0u64..=4, TABLES.len())),
            1..=6,
        )
        .prop_map(|electors| {
            let members = electors
                .into_iter()
                .zip(SMALL_IDS)
                .map(|((laender, g, weights), id)| {
                    let groups: Vec<&str> = [("laender", laender), ("g", g)]
                        .into_iter()
                        .filter_map(|(name, member_of)| member_of.then_some(name))
                        .collect();
                    let weights: Vec<(&str, u64)> = TABLES.into_iter().zip(weights).collect();
                    (member(id), elector(&groups, &weights))
                })
                .collect();
            Electorate { members }
        })
    }

    fn fraction_strategy() -> impl Strategy<Value = Fraction> {
        (1u64..=6).prop_flat_map(|denominator| {
            (0..=denominator)
                .prop_map(move |numerator| Fraction::new(numerator, denominator).unwrap())
        })
    }

    fn scope(ids: Vec<MemberId>) -> impl Strategy<Value = Scope> {
        prop_oneof![
            Just(Scope::Electorate),
            Just(Scope::Group {
                group: group("laender")
            }),
            Just(Scope::Group { group: group("g") }),
            subsequence(ids, 1..=3).prop_map(|members| Scope::Members {
                members: members.into_iter().collect()
            }),
        ]
    }

    fn requirement(ids: Vec<MemberId>, max: u32) -> BoxedStrategy<Requirement> {
        let weighting = prop_oneof![
            Just(Weighting::Heads),
            select(TABLES.to_vec()).prop_map(|name| Weighting::Table { table: table(name) }),
        ];
        let leaf = prop_oneof![
            (scope(ids.clone()), 0..=max)
                .prop_map(|(among, at_least)| Requirement::MinYes { among, at_least }),
            (
                scope(ids.clone()),
                weighting,
                select(vec![
                    ShareBase::AllMembers,
                    ShareBase::TakingPart,
                    ShareBase::VotesCast
                ]),
                select(vec![Comparison::AtLeast, Comparison::MoreThan]),
                fraction_strategy(),
            )
                .prop_map(|(among, weighting, base, comparison, fraction)| {
                    Requirement::YesShare {
                        among,
                        weighting,
                        base,
                        comparison,
                        fraction,
                    }
                }),
            subsequence(ids.clone(), 1..=2).prop_map(|members| Requirement::MandatoryYes {
                members: members.into_iter().collect()
            }),
            (scope(ids), 0..=max)
                .prop_map(|(among, at_most)| Requirement::MaxAgainst { among, at_most }),
        ]
        .boxed();
        prop_oneof![
            4 => leaf.clone(),
            1 => vec(leaf, 0..=3).prop_map(|alternatives| Requirement::AnyOf { alternatives }),
        ]
        .boxed()
    }

    fn custom_rule(ids: Vec<MemberId>, max: u32) -> impl Strategy<Value = Rule> {
        (
            vec(requirement(ids, max), 0..=3),
            select(vec![
                Abstention::Excluded,
                Abstention::NotYes,
                Abstention::Blocks,
            ]),
            select(vec![
                Silence::Abstention,
                Silence::NotYes,
                Silence::Consent,
                Silence::Absent,
                Silence::Blocks,
            ]),
            select(vec![Objection::EndsProcedure, Objection::NotAvailable]),
            proptest::option::of(
                (fraction_strategy(), 0u32..=4)
                    .prop_map(|(fraction, at_least)| Quorum { fraction, at_least }),
            ),
            select(vec![VoteChange::UntilClose, VoteChange::Never]),
            select(vec![EarlyClose::OnCertainty, EarlyClose::Never]),
        )
            .prop_map(
                |(
                    requirements,
                    abstention,
                    silence,
                    objection,
                    quorum,
                    vote_change,
                    early_close,
                )| Rule {
                    electorate: ElectorateSpec::VotingMembers,
                    requirements,
                    abstention,
                    silence,
                    objection,
                    quorum,
                    vote_change,
                    early_close,
                },
            )
    }

    /// Every preset (with its switch on or off), as shipped or stressed: closing early on
    /// certainty with objections unavailable, so that certainty is reached and checked.
    fn preset_rule() -> impl Strategy<Value = Rule> {
        (select(Preset::ALL.to_vec()), any::<bool>(), any::<bool>()).prop_map(
            |(preset, switch, stressed)| {
                let params = match preset {
                    Preset::Bundesrat => PresetParams {
                        constitutional: Some(switch),
                        ..PresetParams::default()
                    },
                    Preset::EuQualifiedMajority => PresetParams {
                        reinforced: Some(switch),
                        ..PresetParams::default()
                    },
                    _ => PresetParams::default(),
                };
                let mut rule = preset.rule(&params).unwrap();
                if stressed {
                    rule.early_close = EarlyClose::OnCertainty;
                    rule.objection = Objection::NotAvailable;
                }
                rule
            },
        )
    }

    fn any_rule(ids: Vec<MemberId>, max: u32) -> impl Strategy<Value = Rule> {
        prop_oneof![preset_rule(), custom_rule(ids, max)]
    }

    /// Answer codes, one per elector, more often answered than not.
    fn codes(size: usize) -> impl Strategy<Value = Vec<Code>> {
        vec(
            prop_oneof![2 => Just(0u8), 2 => Just(1u8), 2 => Just(2u8), 1 => Just(3u8), 1 => Just(4u8)],
            size,
        )
    }

    fn small_case() -> impl Strategy<Value = (Electorate, Vec<Code>, Rule)> {
        small_electorate().prop_flat_map(|electorate| {
            let size = electorate.members.len();
            (Just(electorate), codes(size), any_rule(ids(&SMALL_IDS), 4))
        })
    }

    fn decode(electorate: &Electorate, codes: &[Code]) -> Answers {
        let mut answers = Answers::default();
        for (id, code) in electorate.members.keys().zip(codes) {
            let vote = match code {
                1 => Choice::Yes,
                2 => Choice::No,
                3 => Choice::Abstain,
                4 => {
                    answers.objections.insert(id.clone());
                    continue;
                }
                _ => continue,
            };
            answers.votes.insert(id.clone(), vote);
        }
        answers
    }

    /// What an elector may still do before the deadline: `None` is silence until the deadline,
    /// `Some(None)` an objection, `Some(Some(choice))` a vote.
    fn options(rule: &Rule, vote: Option<Choice>) -> Vec<Option<Option<Choice>>> {
        let votes = Choice::ALL.iter().map(|choice| Some(Some(*choice)));
        match vote {
            Some(choice) if rule.vote_change == VoteChange::Never => vec![Some(Some(choice))],
            Some(_) => votes.collect(),
            None => {
                let mut options: Vec<_> = votes.chain([None]).collect();
                if rule.objection == Objection::EndsProcedure {
                    options.push(Some(None));
                }
                options
            }
        }
    }

    /// The outcomes at the deadline of every completion of `answers`, found by enumerating them
    /// all (stopping once two differ), or `None` where there is nothing left to complete.
    fn completions_by_brute_force(
        rule: &Rule,
        electorate: &Electorate,
        answers: &Answers,
    ) -> Vec<Outcome> {
        let ids: Vec<&MemberId> = electorate.members.keys().collect();
        let choices: Vec<Vec<Option<Option<Choice>>>> = ids
            .iter()
            .map(|id| options(rule, answers.votes.get(*id).copied()))
            .collect();
        let mut outcomes = Vec::new();
        let mut picks = vec![0usize; ids.len()];
        loop {
            let mut completion = Answers::default();
            for ((id, options), pick) in ids.iter().zip(&choices).zip(&picks) {
                match options[*pick] {
                    Some(Some(choice)) => {
                        completion.votes.insert((*id).clone(), choice);
                    }
                    Some(None) => {
                        completion.objections.insert((*id).clone());
                    }
                    None => {}
                }
            }
            let outcome = evaluate(rule, electorate, &completion, AtDeadline).outcome;
            if !outcomes.contains(&outcome) {
                outcomes.push(outcome);
                if outcomes.len() > 1 {
                    return outcomes;
                }
            }
            // The next combination, like an odometer.
            let mut position = 0;
            loop {
                if position == picks.len() {
                    return outcomes;
                }
                picks[position] += 1;
                if picks[position] < choices[position].len() {
                    break;
                }
                picks[position] = 0;
                position += 1;
            }
        }
    }

    /// `evaluate(…, BeforeDeadline)` as the definition in `DOMAIN.md` gives it.
    fn expected_before_deadline(
        rule: &Rule,
        electorate: &Electorate,
        answers: &Answers,
    ) -> (Outcome, Option<Outcome>) {
        let objected = answers
            .objections
            .iter()
            .any(|id| electorate.members.contains_key(id));
        if rule.objection == Objection::EndsProcedure && objected {
            return (OBJECTED, Some(OBJECTED));
        }
        if electorate
            .members
            .keys()
            .all(|id| answers.votes.contains_key(id))
        {
            let outcome = evaluate(rule, electorate, answers, AtDeadline).outcome;
            return (outcome, Some(outcome));
        }
        let outcomes = completions_by_brute_force(rule, electorate, answers);
        let certain = match outcomes[..] {
            [only] => Some(only),
            _ => None,
        };
        let outcome = match (certain, rule.early_close) {
            (Some(outcome), EarlyClose::OnCertainty) => outcome,
            _ => PENDING,
        };
        (outcome, certain)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// Early close is exactly "every completion leads to the same outcome", for every preset
        /// and random rules, weights, quorums, abstention and silence meanings.
        #[test]
        fn early_close_agrees_with_brute_force((electorate, codes, rule) in small_case()) {
            let answers = decode(&electorate, &codes);
            let (expected, expected_certain) = expected_before_deadline(&rule, &electorate, &answers);
            prop_assert_eq!(evaluate(&rule, &electorate, &answers, BeforeDeadline).outcome, expected);
            prop_assert_eq!(certain_outcome(&rule, &electorate, &answers), expected_certain);
        }

        /// Turning a no, an abstention or silence into yes never undoes an adoption (with or
        /// without a quorum: a yes takes part as much as a no or an abstention, more than silence).
        #[test]
        fn a_further_yes_never_undoes_an_adoption((electorate, codes, rule) in small_case()) {
            let answers = decode(&electorate, &codes.iter().map(|code| code % 4).collect::<Vec<_>>());
            if evaluate(&rule, &electorate, &answers, AtDeadline).outcome == ADOPTED {
                for id in electorate.members.keys() {
                    let mut more = answers.clone();
                    more.votes.insert(id.clone(), Choice::Yes);
                    prop_assert_eq!(evaluate(&rule, &electorate, &more, AtDeadline).outcome, ADOPTED, "{} votes yes", id);
                }
            }
        }
    }

    /// A large electorate (the IT-Planungsrat or the EU) with answers, a rule, and some
    /// completions of the outstanding answers.
    fn large_case() -> impl Strategy<Value = (Electorate, Vec<Code>, Rule, Vec<Vec<Code>>)> {
        prop_oneof![Just(it_planungsrat()), Just(eu())].prop_flat_map(|electorate| {
            let size = electorate.members.len();
            let names: Vec<MemberId> = electorate.members.keys().cloned().collect();
            let answered = vec(
                prop_oneof![1 => Just(0u8), 3 => Just(1u8), 2 => Just(2u8), 1 => Just(3u8)],
                size,
            );
            (
                Just(electorate),
                answered,
                any_rule(names, 20),
                vec(vec(0u8..=4, size), 24),
            )
        })
    }

    /// Completes `answers` with `codes` for whatever is outstanding (see [`options`]).
    fn complete(
        rule: &Rule,
        electorate: &Electorate,
        answers: &Answers,
        codes: &[Code],
    ) -> Answers {
        let mut completion = answers.clone();
        for (id, code) in electorate.members.keys().zip(codes) {
            let options = options(rule, answers.votes.get(id).copied());
            match options[usize::from(*code) % options.len()] {
                Some(Some(choice)) => {
                    completion.votes.insert(id.clone(), choice);
                }
                Some(None) => {
                    completion.objections.insert(id.clone());
                }
                None => {}
            }
        }
        completion
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        /// An outcome reached before the deadline is the outcome at the deadline, however the
        /// outstanding answers come in: checked on the real electorates, with sampled
        /// completions and the extreme ones (everyone outstanding yes, no, abstaining, silent).
        #[test]
        fn early_close_never_contradicts_the_deadline((electorate, codes, rule, samples) in large_case()) {
            let answers = decode(&electorate, &codes);
            let before = evaluate(&rule, &electorate, &answers, BeforeDeadline).outcome;
            let everyone_answered = electorate.members.keys().all(|id| answers.votes.contains_key(id));
            if before.is_final() && !everyone_answered {
                let size = electorate.members.len();
                let extremes = (0u8..4).map(|code| vec![code; size]);
                for completion_codes in samples.into_iter().chain(extremes) {
                    let completion = complete(&rule, &electorate, &answers, &completion_codes);
                    prop_assert_eq!(evaluate(&rule, &electorate, &completion, AtDeadline).outcome, before);
                }
            }
        }
    }
}

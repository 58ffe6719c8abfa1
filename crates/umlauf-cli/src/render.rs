//! Readable views: the status table, the decision as a subscriber receives it, times and shares.
//!
//! Every function here is pure: the present instant and the members' names are arguments, so the
//! tests compare whole views with expected text.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Europe::Berlin;
use umlauf_domain::event::{CloseTrigger, Decision, FinalAnswer};
use umlauf_domain::ids::{Choice, MemberId};
use umlauf_domain::read_model::{CirculationState, CirculationStatus};
use umlauf_domain::rule::{FailureReason, RequirementTally, Tally};
use umlauf_nats::wire::DecisionMessage;

/// Members' names by id; a member without a name is shown by its id alone.
pub type MemberNames = BTreeMap<MemberId, String>;

/// Optional terminal colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    enabled: bool,
}

impl Style {
    /// No colours: for files, pipes and tests.
    pub const PLAIN: Style = Style { enabled: false };

    /// Colours when standard output is a terminal and `NO_COLOR` is not set.
    pub fn for_stdout() -> Style {
        use std::io::IsTerminal as _;
        Style {
            enabled: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        }
    }

    fn paint(self, code: &str, text: &str) -> String {
        if self.enabled {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    /// Bold text.
    pub fn bold(self, text: &str) -> String {
        self.paint("1", text)
    }

    /// Dimmed text.
    pub fn dim(self, text: &str) -> String {
        self.paint("2", text)
    }

    /// Green text, for what passes.
    pub fn good(self, text: &str) -> String {
        self.paint("32", text)
    }

    /// Red text, for what fails.
    pub fn bad(self, text: &str) -> String {
        self.paint("31", text)
    }

    /// Yellow text, for what is neither.
    pub fn neutral(self, text: &str) -> String {
        self.paint("33", text)
    }

    /// A choice, coloured by its meaning.
    pub fn choice(self, text: &str) -> String {
        match text {
            "yes" => self.good(text),
            "no" | "objected" => self.bad(text),
            _ => self.neutral(text),
        }
    }
}

/// An instant in Berlin time with UTC beside it: `Fri 2026-03-20 18:00 CET (17:00 UTC)`.
pub fn berlin_and_utc(instant: DateTime<Utc>) -> String {
    let berlin = instant.with_timezone(&Berlin);
    let utc = if berlin.date_naive() == instant.date_naive() {
        instant.format("%H:%M UTC").to_string()
    } else {
        instant.format("%Y-%m-%d %H:%M UTC").to_string()
    };
    format!("{} ({utc})", berlin.format("%a %Y-%m-%d %H:%M %Z"))
}

/// A span of time in words, to the two largest units: `18 days 7 hours`, `4 minutes 30 seconds`.
pub fn span(delta: TimeDelta) -> String {
    let seconds = delta.num_seconds().unsigned_abs();
    let units = [
        (86_400, "day"),
        (3_600, "hour"),
        (60, "minute"),
        (1, "second"),
    ];
    let mut parts = Vec::new();
    let mut rest = seconds;
    for (size, name) in units {
        let count = rest / size;
        rest %= size;
        if count > 0 {
            parts.push(format!(
                "{count} {name}{}",
                if count == 1 { "" } else { "s" }
            ));
        }
        // Only the unit right after the largest one is shown, and only if it is not zero:
        // `2 days` rather than `2 days 0 hours 59 seconds`.
        if !parts.is_empty() && (count == 0 || parts.len() == 2) {
            break;
        }
    }
    if parts.is_empty() {
        "0 seconds".to_owned()
    } else {
        parts.join(" ")
    }
}

/// `… left` before the deadline, `passed … ago` after it.
pub fn time_left(deadline: DateTime<Utc>, now: DateTime<Utc>) -> String {
    if deadline > now {
        format!("{} left", span(deadline - now))
    } else {
        format!("passed {} ago", span(now - deadline))
    }
}

/// `part / whole` as a percentage with two decimals, rounded half up, computed in integers:
/// `percent(8_230_231, 10_000_000) == "82.30 %"`.
pub fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "– %".to_owned();
    }
    // Hundredths of a percent, rounded half up: (part × 10000 + whole / 2) / whole.
    let hundredths = (u128::from(part) * 10_000 + u128::from(whole) / 2) / u128::from(whole);
    format!("{}.{:02} %", hundredths / 100, hundredths % 100)
}

/// The fraction named at the end of a share requirement's description (`… >= 2/3 of …`).
fn share_fraction(description: &str) -> Option<(u64, u64)> {
    if !description.starts_with("yes share") {
        return None;
    }
    description.split_whitespace().find_map(|word| {
        let (numerator, denominator) = word.split_once('/')?;
        Some((numerator.parse().ok()?, denominator.parse().ok()?))
    })
}

/// A decision in words.
pub fn decision_text(decision: Decision) -> &'static str {
    match decision {
        Decision::Adopted => "adopted",
        Decision::Rejected => "rejected",
        Decision::Failed(FailureReason::Objection) => {
            "failed: objection to the written procedure (referred to a meeting)"
        }
        Decision::Failed(FailureReason::Quorum) => "failed: too few members took part (quorum)",
        Decision::Withdrawn => "withdrawn",
    }
}

fn paint_decision(style: Style, decision: Decision) -> String {
    let text = decision_text(decision);
    match decision {
        Decision::Adopted => style.good(text),
        Decision::Rejected | Decision::Failed(_) => style.bad(text),
        Decision::Withdrawn => style.neutral(text),
    }
}

fn trigger_text(trigger: CloseTrigger) -> String {
    match trigger {
        CloseTrigger::Answer { stream_version } => {
            format!("closed by the answer recorded at version {stream_version} of its stream")
        }
        CloseTrigger::Deadline { deadline } => {
            format!("closed at the deadline, {}", berlin_and_utc(deadline))
        }
        CloseTrigger::Withdrawal { stream_version } => {
            format!("withdrawn at version {stream_version} of its stream")
        }
    }
}

fn member_label(member: &MemberId, names: &MemberNames, width: usize) -> String {
    match names.get(member) {
        Some(name) => format!("{:<width$}  {name}", member.as_str()),
        None => member.as_str().to_owned(),
    }
}

fn label_width<'m>(members: impl Iterator<Item = &'m MemberId>) -> usize {
    members
        .map(|member| member.as_str().len())
        .max()
        .unwrap_or(0)
}

/// The requirement table of a tally, one line per requirement (alternatives indented):
/// description, value, base, met, and the share as a percentage where the requirement is one.
pub fn requirement_table(tally: &Tally, style: Style, indent: &str) -> String {
    let mut rows = Vec::new();
    flatten_requirements(&tally.requirements, 0, &mut rows);
    let width = rows
        .iter()
        .map(|(depth, requirement)| depth * 2 + requirement.description.chars().count())
        .max()
        .unwrap_or(0)
        .max("requirement".len());
    let value_width = rows
        .iter()
        .map(|(_, requirement)| requirement.value.to_string().len())
        .max()
        .unwrap_or(0)
        .max("value".len());
    let base_width = rows
        .iter()
        .map(|(_, requirement)| requirement.base.to_string().len())
        .max()
        .unwrap_or(0)
        .max("base".len());
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{indent}{:<width$}  {:>value_width$}  {:>base_width$}  met",
        "requirement", "value", "base"
    );
    for (depth, requirement) in rows {
        let description = format!("{}{}", "  ".repeat(depth), requirement.description);
        let met = if requirement.met {
            style.good("yes")
        } else {
            style.bad("no")
        };
        let _ = writeln!(
            out,
            "{indent}{description:<width$}  {:>value_width$}  {:>base_width$}  {met}",
            requirement.value, requirement.base
        );
        if let Some((numerator, denominator)) = share_fraction(&requirement.description) {
            let _ = writeln!(
                out,
                "{indent}{}  = {} (needs {} {numerator}/{denominator} = {})",
                "  ".repeat(depth),
                percent(requirement.value, requirement.base),
                if requirement.description.contains(" > ") {
                    "more than"
                } else {
                    "at least"
                },
                percent(numerator, denominator)
            );
        }
    }
    out
}

fn flatten_requirements<'t>(
    requirements: &'t [RequirementTally],
    depth: usize,
    rows: &mut Vec<(usize, &'t RequirementTally)>,
) {
    for requirement in requirements {
        rows.push((depth, requirement));
        flatten_requirements(&requirement.alternatives, depth + 1, rows);
    }
}

/// The counts of a tally in one line.
pub fn tally_line(tally: &Tally) -> String {
    let mut line = format!(
        "{} yes, {} no, {} abstain, {} silent, {} objected; {} taking part",
        tally.yes, tally.no, tally.abstain, tally.silent, tally.objected, tally.taking_part
    );
    if let Some(quorum) = tally.quorum_required {
        let _ = write!(line, " (quorum {quorum})");
    }
    line
}

/// The status of a circulation as a readable table.
pub fn status_table(
    status: &CirculationStatus,
    names: &MemberNames,
    now: DateTime<Utc>,
    style: Style,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", style.bold(&status.title));
    let field = |out: &mut String, name: &str, value: String| {
        let _ = writeln!(out, "  {name:<12}{value}");
    };
    field(
        &mut out,
        "circulation",
        format!("{} (body {})", status.circulation, status.body),
    );
    field(
        &mut out,
        "rule",
        status
            .preset
            .map_or_else(|| "custom rule".to_owned(), |preset| preset.to_string()),
    );
    let state = match (status.state, status.decision) {
        (CirculationState::Open, _) => style.neutral("open"),
        (CirculationState::Closed, Some(decision)) => {
            format!("closed, {}", paint_decision(style, decision))
        }
        (CirculationState::Closed, None) => "closed".to_owned(),
    };
    field(&mut out, "state", state);
    field(&mut out, "opened", berlin_and_utc(status.opened_at));
    let deadline = match status.state {
        CirculationState::Open => format!(
            "{}, {}",
            berlin_and_utc(status.deadline),
            time_left(status.deadline, now)
        ),
        CirculationState::Closed => berlin_and_utc(status.deadline),
    };
    field(&mut out, "deadline", deadline);
    field(
        &mut out,
        "proposal",
        format!("sha256 {}", status.proposal_sha256),
    );

    let electorate = status.votes.len() + status.objections.len() + status.awaiting.len();
    let width = label_width(
        status
            .votes
            .keys()
            .chain(status.awaiting.iter())
            .chain(status.objections.keys()),
    );
    let name_width = status
        .votes
        .keys()
        .map(|member| member_label(member, names, width).chars().count())
        .max()
        .unwrap_or(0);
    let _ = writeln!(
        out,
        "\nvotes ({} of {electorate} answered)",
        status.votes.len() + status.objections.len()
    );
    if status.votes.is_empty() {
        let _ = writeln!(out, "  none yet");
    }
    for choice in Choice::ALL {
        for (member, vote) in status
            .votes
            .iter()
            .filter(|(_, vote)| vote.choice == choice)
        {
            let label = member_label(member, names, width);
            let _ = writeln!(
                out,
                "  {label:<name_width$}  {}",
                style.choice(&choice.to_string())
            );
            if let Some(statement) = &vote.statement {
                for line in statement.lines() {
                    let _ = writeln!(out, "  {:<name_width$}  | {line}", "");
                }
            }
        }
    }
    let _ = writeln!(out, "\nawaiting ({})", status.awaiting.len());
    if status.awaiting.is_empty() {
        let _ = writeln!(out, "  nobody");
    }
    for member in &status.awaiting {
        let _ = writeln!(out, "  {}", member_label(member, names, width));
    }
    let _ = writeln!(out, "\nobjections ({})", status.objections.len());
    if status.objections.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for (member, reason) in &status.objections {
        let _ = writeln!(out, "  {}", member_label(member, names, width));
        for line in reason.lines() {
            let _ = writeln!(out, "  {:<width$}  | {line}", "");
        }
    }
    let heading = match status.state {
        CirculationState::Open => "tally so far",
        CirculationState::Closed => "tally",
    };
    let _ = writeln!(out, "\n{heading}: {}", tally_line(&status.tally));
    out.push_str(&requirement_table(&status.tally, style, "  "));
    if let Some(decision) = status.decision {
        let _ = writeln!(out, "\ndecision: {}", paint_decision(style, decision));
        if let Some(trigger) = status.trigger {
            let _ = writeln!(out, "  {}", trigger_text(trigger));
        }
    }
    out
}

/// A decision as a subscriber receives it: outcome, tally per requirement, every answer.
pub fn decision_view(
    decision: &DecisionMessage,
    subject: &str,
    names: &MemberNames,
    style: Style,
) -> String {
    let mut out = String::new();
    // The outcome in capitals, its reason as it is: `FAILED: objection to …`.
    let text = decision_text(decision.decision);
    let (outcome, reason) = text.split_once(':').unwrap_or((text, ""));
    let outcome = outcome.to_uppercase();
    let outcome = match decision.decision {
        Decision::Adopted => style.good(&outcome),
        Decision::Rejected | Decision::Failed(_) => style.bad(&outcome),
        Decision::Withdrawn => style.neutral(&outcome),
    };
    let _ = writeln!(
        out,
        "{} {}{reason}",
        style.bold("Decision:"),
        style.bold(&outcome)
    );
    let _ = writeln!(out, "  {}", decision.title);
    let _ = writeln!(
        out,
        "  {}",
        style.dim(&format!(
            "body {}, circulation {}, log position {}",
            decision.body, decision.circulation, decision.position
        ))
    );
    let _ = writeln!(out, "  {}", style.dim(&format!("received on {subject}")));
    let _ = writeln!(out, "  tally: {}", tally_line(&decision.tally));
    out.push_str(&requirement_table(&decision.tally, style, "  "));
    out.push_str(&answers_view(&decision.answers, names, style));
    out
}

/// The width the lists of answers are wrapped to.
const ANSWERS_WIDTH: usize = 96;

/// Splits `text` at spaces into lines of at most `width` characters (a longer word gets a line
/// of its own).
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

/// Joins `items` with `, ` into lines of at most `width` characters, breaking only between
/// items.
pub fn wrap_list(items: &[String], width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for (index, item) in items.iter().enumerate() {
        let item = if index + 1 < items.len() {
            format!("{item},")
        } else {
            item.clone()
        };
        if !line.is_empty() && line.chars().count() + 1 + item.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&item);
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

/// Every elector's final answer, grouped by answer.
pub fn answers_view(
    answers: &BTreeMap<MemberId, FinalAnswer>,
    names: &MemberNames,
    style: Style,
) -> String {
    let mut out = String::new();
    let groups = [
        (FinalAnswer::Yes, "yes"),
        (FinalAnswer::No, "no"),
        (FinalAnswer::Abstain, "abstain"),
        (FinalAnswer::Objected, "objected"),
        (FinalAnswer::Silent, "silent"),
    ];
    for (answer, label) in groups {
        let members: Vec<String> = answers
            .iter()
            .filter(|(_, given)| **given == answer)
            .map(|(member, _)| match names.get(member) {
                Some(name) => format!("{name} ({member})"),
                None => member.to_string(),
            })
            .collect();
        if members.is_empty() {
            continue;
        }
        let lead = format!("  {:<9} {:>2}: ", label, members.len());
        let lines = wrap_list(&members, ANSWERS_WIDTH.saturating_sub(lead.chars().count()));
        for (index, line) in lines.iter().enumerate() {
            if index == 0 {
                let padding = " ".repeat(9usize.saturating_sub(label.len()));
                let _ = writeln!(
                    out,
                    "  {}{padding} {:>2}: {line}",
                    style.choice(label),
                    members.len()
                );
            } else {
                let _ = writeln!(out, "{:width$}{line}", "", width = lead.chars().count());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_are_exact_and_rounded_half_up() {
        assert_eq!(percent(8_230_231, 10_000_000), "82.30 %");
        assert_eq!(percent(2, 3), "66.67 %");
        assert_eq!(percent(1, 3), "33.33 %");
        assert_eq!(percent(1, 8), "12.50 %");
        assert_eq!(percent(1, 80_000), "0.00 %");
        assert_eq!(percent(1, 20_000), "0.01 %");
        assert_eq!(percent(u64::MAX, u64::MAX), "100.00 %");
        assert_eq!(percent(0, 0), "– %");
    }

    #[test]
    fn text_wraps_at_spaces() {
        assert_eq!(wrap("a bb ccc dd", 6), ["a bb", "ccc dd"]);
        assert_eq!(wrap("abcdefgh ij", 4), ["abcdefgh", "ij"]);
        assert_eq!(wrap("", 4), [""]);
        let items = [
            "Bund (DE)".to_owned(),
            "Bayern (DE-BY)".to_owned(),
            "Bremen (DE-HB)".to_owned(),
        ];
        assert_eq!(
            wrap_list(&items, 26),
            ["Bund (DE), Bayern (DE-BY),", "Bremen (DE-HB)"]
        );
    }

    #[test]
    fn spans_name_the_two_largest_units() {
        let delta = |seconds| TimeDelta::try_seconds(seconds).unwrap();
        assert_eq!(span(delta(18 * 86_400 + 7 * 3_600 + 59)), "18 days 7 hours");
        assert_eq!(span(delta(2 * 86_400 + 59)), "2 days");
        assert_eq!(span(delta(270)), "4 minutes 30 seconds");
        assert_eq!(span(delta(1)), "1 second");
        assert_eq!(span(delta(0)), "0 seconds");
    }
}

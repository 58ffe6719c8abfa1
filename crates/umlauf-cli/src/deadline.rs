//! Deadlines as people write them.
//!
//! Accepted forms, for [`parse_deadline`]:
//!
//! - RFC 3339 with an offset or `Z`: `2026-03-20T18:00:00+01:00`, `2026-03-20T17:00:00Z`; the
//!   seconds may be left out and a space may stand for the `T`;
//! - local time without an offset: `2026-03-20 18:00` or `2026-03-20T18:00:30`, read in the
//!   time zone given (the machine's, for the CLI); a time that the clock change skips or repeats
//!   is refused, with a request for an explicit offset;
//! - relative to now: `+90s`, `+30m`, `+2h`, `+14d`.
//!
//! A deadline must lie in the future. The clock and the time zone are arguments, so tests are
//! deterministic.

use chrono::{
    DateTime, FixedOffset, LocalResult, NaiveDateTime, SubsecRound as _, TimeDelta, TimeZone, Utc,
};

const NAIVE_FORMATS: [&str; 4] = [
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%dT%H:%M",
];

/// Parses a deadline; `local` is the zone of times written without an offset, `now` the present.
pub fn parse_deadline<Tz: TimeZone>(
    text: &str,
    local: &Tz,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    let deadline = if let Some(relative) = text.strip_prefix('+') {
        (now + parse_duration(relative)?).trunc_subsecs(0)
    } else {
        parse_instant(text, local)?
    };
    if deadline <= now {
        return Err(format!(
            "the deadline {text} ({}) is not in the future",
            deadline.format("%Y-%m-%d %H:%M:%S UTC")
        ));
    }
    Ok(deadline)
}

fn parse_instant<Tz: TimeZone>(text: &str, local: &Tz) -> Result<DateTime<Utc>, String> {
    if let Ok(instant) = DateTime::parse_from_rfc3339(text) {
        return Ok(instant.with_timezone(&Utc));
    }
    let unknown = || {
        format!(
            "{text:?} is not a deadline: write 2026-03-20 18:00 (local time), \
             2026-03-20T18:00:00+01:00, 2026-03-20T17:00:00Z, or +2h / +14d"
        )
    };
    let (naive_text, offset) = split_offset(text).ok_or_else(unknown)?;
    let naive = NAIVE_FORMATS
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(naive_text, format).ok())
        .ok_or_else(unknown)?;
    let local_result = match offset {
        Some(offset) => offset
            .from_local_datetime(&naive)
            .map(|instant| instant.with_timezone(&Utc)),
        None => local
            .from_local_datetime(&naive)
            .map(|instant| instant.with_timezone(&Utc)),
    };
    match local_result {
        LocalResult::Single(instant) => Ok(instant),
        LocalResult::Ambiguous(earlier, later) => Err(format!(
            "{text} happens twice in local time (the clocks go back), at {} and at {}: \
             give an offset, e.g. {}",
            earlier.format("%H:%M UTC"),
            later.format("%H:%M UTC"),
            earlier.format("%Y-%m-%dT%H:%M:%SZ"),
        )),
        LocalResult::None => Err(format!(
            "{text} does not exist in local time (the clocks go forward): give another time or \
             an offset"
        )),
    }
}

/// Splits a trailing `Z` or `±hh:mm` offset from a date and time.
fn split_offset(text: &str) -> Option<(&str, Option<FixedOffset>)> {
    if let Some(naive) = text.strip_suffix(['Z', 'z']) {
        return Some((naive, FixedOffset::east_opt(0)));
    }
    // An offset can only follow the time, so look for its sign after the date's dashes.
    let time_start = text.find([' ', 'T'])?;
    match text[time_start..].rfind(['+', '-']) {
        Some(position) => {
            let (naive, offset) = text.split_at(time_start + position);
            let sign = if offset.starts_with('-') { -1 } else { 1 };
            let (hours, minutes) = offset.get(1..)?.split_once(':')?;
            let digits =
                |part: &str| part.len() == 2 && part.bytes().all(|byte| byte.is_ascii_digit());
            if !digits(hours) || !digits(minutes) {
                return None;
            }
            let seconds = hours.parse::<i32>().ok()? * 3600 + minutes.parse::<i32>().ok()? * 60;
            Some((naive, Some(FixedOffset::east_opt(sign * seconds)?)))
        }
        None => Some((text, None)),
    }
}

/// Parses `90s`, `30m`, `2h` or `14d`.
fn parse_duration(text: &str) -> Result<TimeDelta, String> {
    let invalid = || format!("+{text} is not a duration like +90s, +30m, +2h or +14d");
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(invalid)?;
    let (number, unit) = text.split_at(split);
    let number: i64 = number.parse().map_err(|_| invalid())?;
    let delta = match unit {
        "s" => TimeDelta::try_seconds(number),
        "m" | "min" => TimeDelta::try_minutes(number),
        "h" => TimeDelta::try_hours(number),
        "d" => TimeDelta::try_days(number),
        _ => None,
    };
    delta.ok_or_else(invalid)
}

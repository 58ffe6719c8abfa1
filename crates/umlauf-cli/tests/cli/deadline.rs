//! Deadlines: RFC 3339, local time in the machine's zone, relative times; never in the past.

use chrono::{DateTime, Utc};
use chrono_tz::Europe::Berlin;
use umlauf_cli::deadline::parse_deadline;

fn utc(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

fn check(input: &str, expected: &str) {
    let now = utc("2026-03-02T09:00:00Z");
    assert_eq!(
        parse_deadline(input, &Berlin, now),
        Ok(utc(expected)),
        "{input}"
    );
}

fn refused(input: &str, needle: &str) {
    let now = utc("2026-03-02T09:00:00Z");
    let error = parse_deadline(input, &Berlin, now).unwrap_err();
    assert!(error.contains(needle), "{input}: {error}");
}

#[test]
fn written_forms_of_an_instant() {
    // RFC 3339 with an offset or Z, with or without seconds, T or space.
    check("2026-03-20T18:00:00+01:00", "2026-03-20T17:00:00Z");
    check("2026-03-20T17:00:00Z", "2026-03-20T17:00:00Z");
    check("2026-03-20T17:00Z", "2026-03-20T17:00:00Z");
    check("2026-03-20 18:00+01:00", "2026-03-20T17:00:00Z");
    check("2026-03-20T12:00-05:00", "2026-03-20T17:00:00Z");
    // Local time, in the zone given: winter time (CET) and summer time (CEST).
    check("2026-03-20 18:00", "2026-03-20T17:00:00Z");
    check("2026-03-20T18:00:30", "2026-03-20T17:00:30Z");
    check("2026-07-01 18:00", "2026-07-01T16:00:00Z");
    // Relative to now.
    check("+90s", "2026-03-02T09:01:30Z");
    check("+30m", "2026-03-02T09:30:00Z");
    check("+2h", "2026-03-02T11:00:00Z");
    check("+14d", "2026-03-16T09:00:00Z");
}

#[test]
fn unclear_impossible_and_past_deadlines_are_refused() {
    // The clocks go forward on 2026-03-29 at 02:00 and back on 2026-10-25 at 03:00.
    refused("2026-03-29 02:30", "does not exist");
    refused("2026-10-25 02:30", "happens twice");
    refused("2026-03-02 09:59", "not in the future");
    refused("2026-03-02T09:00:00Z", "not in the future");
    refused("2026-03-20", "is not a deadline");
    refused("tomorrow", "is not a deadline");
    refused("20.03.2026 18:00", "is not a deadline");
    refused("2026-03-20 18:00+1", "is not a deadline");
    refused("+2x", "not a duration");
    refused("+h", "not a duration");
}

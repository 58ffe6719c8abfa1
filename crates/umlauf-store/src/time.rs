//! Instants as the database columns hold them.
//!
//! The record bytes carry every instant exactly (chrono keeps nanoseconds; PostgreSQL's
//! `timestamptz` would cut them to microseconds), so columns that exist only to filter and sort,
//! such as a circulation's deadline, hold fixed-width RFC 3339 text whose byte order is time order
//! on both backends.

use chrono::{DateTime, SecondsFormat, Utc};

/// The last instant fixed-width text can spell.
const LATEST: &str = "9999-12-31T23:59:59.999999999Z";
/// The first instant fixed-width text can spell.
const EARLIEST: &str = "0000-01-01T00:00:00.000000000Z";

/// Fixed-width RFC 3339 text with nanoseconds, `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`, whose byte order
/// is time order. Instants outside years 0 to 9999 saturate to the nearest end, which keeps the
/// order (a deadline in the year 10000 is never due).
pub(crate) fn sortable(instant: DateTime<Utc>) -> String {
    let text = instant.to_rfc3339_opts(SecondsFormat::Nanos, true);
    if text.len() == LATEST.len() && !text.starts_with(['+', '-']) {
        text
    } else if text.starts_with('-') {
        EARLIEST.to_owned()
    } else {
        LATEST.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sortable_text_orders_like_time_and_saturates() {
        let early: DateTime<Utc> = "2026-03-02T09:00:00Z".parse().unwrap();
        let late: DateTime<Utc> = "2026-03-02T09:00:00.5Z".parse().unwrap();
        assert_eq!(sortable(early), "2026-03-02T09:00:00.000000000Z");
        assert!(sortable(early) < sortable(late));
        let far: DateTime<Utc> = "+12026-03-02T09:00:00Z"
            .parse()
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        assert_eq!(sortable(far), LATEST);
        assert_eq!(sortable(DateTime::<Utc>::MIN_UTC), EARLIEST);
    }
}

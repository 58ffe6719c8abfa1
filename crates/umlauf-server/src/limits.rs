//! What the connected NATS server's `max_payload` allows the service to accept.
//!
//! Every record the service appends must be publishable on the log stream, and every reply must
//! fit in one message, or the relay would stall on that record for good. A record of a command
//! holds the envelope and the events decided from it (at most about the payload again, which is
//! three quarters of the envelope's base64), and a reply carries its records in base64 beside
//! their receipts. So the service keeps [`Limits::max_record_bytes`] at `max_payload` less a
//! sixteenth (subject, headers) and caps the envelope size at three sevenths of that less a
//! margin: an envelope at the cap gives records of at most about three quarters of the
//! message, whose base64 fits. The store refuses any record above the record limit on its own
//! (`record_too_large`), so nothing it accepts can stall the relay.

use umlauf_store::MAX_RECORD_BYTES;

use crate::config::ConfigError;

/// The room left for the record fields beside the envelope and its events.
const RECORD_MARGIN: usize = 2 * 1024;

/// The smallest envelope limit the service runs with: room for a body's constitution.
pub(crate) const MIN_ENVELOPE_BYTES: usize = 8 * 1024;

/// The sizes the service accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// The largest envelope a command may come in.
    pub(crate) max_envelope_bytes: usize,
    /// The largest record the store writes.
    pub(crate) max_record_bytes: usize,
    /// Whether the configured envelope limit was lowered to fit NATS.
    pub(crate) capped: bool,
}

/// The limits for `configured` envelope bytes on a NATS server allowing `max_payload` bytes per
/// message; an error if that server's messages are too small for the service to work.
pub(crate) fn limits(configured: usize, max_payload: usize) -> Result<Limits, ConfigError> {
    let publishable = max_payload - max_payload / 16;
    let max_record_bytes = publishable.min(MAX_RECORD_BYTES);
    let envelope_cap = (max_record_bytes / 7)
        .saturating_mul(3)
        .saturating_sub(RECORD_MARGIN);
    if envelope_cap < MIN_ENVELOPE_BYTES {
        return Err(ConfigError::Invalid {
            key: "nats_url",
            detail: format!(
                "the NATS server allows messages of at most {max_payload} bytes (max_payload), \
                 which leaves room for envelopes of {envelope_cap} bytes; umlauf needs at least \
                 {MIN_ENVELOPE_BYTES}: raise max_payload in the NATS server's configuration"
            ),
        });
    }
    Ok(Limits {
        max_envelope_bytes: configured.min(envelope_cap),
        max_record_bytes,
        capped: configured > envelope_cap,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_nats_payload_keeps_the_default_envelope_limit() {
        let limits = limits(384 * 1024, 1024 * 1024).unwrap();
        assert_eq!(limits.max_envelope_bytes, 384 * 1024);
        assert!(!limits.capped);
        assert_eq!(limits.max_record_bytes, 983_040);
    }

    #[test]
    fn a_small_payload_caps_the_envelope_so_its_records_and_reply_fit() {
        let limits = limits(384 * 1024, 64 * 1024).unwrap();
        assert!(limits.capped);
        assert_eq!(limits.max_record_bytes, 61_440);
        assert_eq!(limits.max_envelope_bytes, 61_440 / 7 * 3 - RECORD_MARGIN);
        // An envelope at the cap with events as large as its payload, in base64, still fits.
        let records = limits.max_envelope_bytes * 7 / 4 + RECORD_MARGIN;
        assert!(records * 4 / 3 < 64 * 1024);
    }

    #[test]
    fn a_payload_too_small_for_any_command_is_a_configuration_error() {
        let error = limits(384 * 1024, 16 * 1024).unwrap_err();
        assert!(error.to_string().contains("max_payload"), "{error}");
    }

    #[test]
    fn huge_payloads_keep_the_store_limit() {
        let limits = limits(usize::MAX, 64 * 1024 * 1024).unwrap();
        assert_eq!(limits.max_record_bytes, MAX_RECORD_BYTES);
        assert!(limits.capped);
    }
}

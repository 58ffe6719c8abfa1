//! Base64 as DSSE asks for it: we write standard padded base64, and read standard or URL-safe,
//! padded or not, because the DSSE spec says verifiers must accept both alphabets.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};

use crate::ProofError;

/// Padding is optional, but trailing bits must be zero, so each alphabet and padding choice still
/// has exactly one spelling per byte string.
const LENIENT: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const STANDARD_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);
const URL_SAFE_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);

/// Decodes `text` in either alphabet; a text mixing both alphabets decodes in neither and is refused.
pub(crate) fn decode(text: &str, field: &'static str) -> Result<Vec<u8>, ProofError> {
    STANDARD_LENIENT
        .decode(text)
        .or_else(|_| URL_SAFE_LENIENT.decode(text))
        .map_err(|_| ProofError::BadBase64 { field })
}

/// Encodes `bytes` as standard padded base64.
pub(crate) fn encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::{decode, encode};
    use crate::ProofError;

    #[test]
    fn reads_both_alphabets_with_or_without_padding() {
        // 0xfb 0xff encodes to "+/8=" in the standard alphabet and "-_8=" in the URL-safe one.
        for text in ["+/8=", "+/8", "-_8=", "-_8"] {
            assert_eq!(decode(text, "payload"), Ok(vec![0xfb, 0xff]), "{text}");
        }
        assert_eq!(decode("", "payload"), Ok(vec![]));
        assert_eq!(encode(&[0xfb, 0xff]), "+/8=");
    }

    #[test]
    fn refuses_mixed_alphabets_whitespace_and_nonzero_trailing_bits() {
        for text in ["+_8=", " +/8=", "+/8=\n", "+/9=", "+/8==", "a", "****"] {
            assert_eq!(
                decode(text, "payload"),
                Err(ProofError::BadBase64 { field: "payload" }),
                "{text:?}"
            );
        }
    }
}

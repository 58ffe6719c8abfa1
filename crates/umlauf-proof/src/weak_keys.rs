//! The 32-byte encodings of weak Ed25519 public keys, for code that cannot do curve arithmetic.
//!
//! A weak key is one that decodes to a point of small order (one of the 8 torsion points): a
//! signature under it can be made to verify for many messages, so it proves nothing. The domain
//! crate holds the list and refuses such keys at registration; the test here checks the list
//! against ed25519-dalek.

pub use umlauf_domain::weak_keys::SMALL_ORDER_ENCODINGS;

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use curve25519_dalek::constants::EIGHT_TORSION;
    use ed25519_dalek::VerifyingKey;

    use super::SMALL_ORDER_ENCODINGS;

    /// p = 2^255 - 19, little-endian.
    const FIELD_PRIME: [u8; 32] = {
        let mut prime = [0xff; 32];
        prime[0] = 0xed;
        prime[31] = 0x7f;
        prime
    };

    /// `a + b` as little-endian integers, if the sum still fits the 255 bits of an encoded y.
    fn add_within_255_bits(a: &[u8; 32], b: &[u8; 32]) -> Option<[u8; 32]> {
        let mut sum = [0_u8; 32];
        let mut carry = 0_u16;
        for (index, byte) in sum.iter_mut().enumerate() {
            let total = u16::from(a[index]) + u16::from(b[index]) + carry;
            [*byte, _] = total.to_le_bytes();
            carry = total >> 8;
        }
        (carry == 0 && sum[31] & 0x80 == 0).then_some(sum)
    }

    /// Every encoding that could decode to a torsion point. Decoding reads y mod p from the low
    /// 255 bits and takes only the sign of x from the top bit, so an encoding of a torsion point
    /// has the y of one of the 8 torsion points plus a multiple of p, and either top bit.
    fn candidates() -> BTreeSet<[u8; 32]> {
        let mut candidates = BTreeSet::new();
        for point in EIGHT_TORSION {
            let mut y = point.compress().to_bytes();
            y[31] &= 0x7f;
            let mut next = Some(y);
            while let Some(y) = next {
                for sign in [0x00, 0x80] {
                    let mut encoding = y;
                    encoding[31] |= sign;
                    candidates.insert(encoding);
                }
                next = add_within_255_bits(&y, &FIELD_PRIME);
            }
        }
        candidates
    }

    fn is_weak(encoding: &[u8; 32]) -> bool {
        VerifyingKey::from_bytes(encoding).is_ok_and(|key| key.is_weak())
    }

    #[test]
    fn the_list_is_exactly_the_candidates_that_dalek_finds_weak() {
        let listed: BTreeSet<[u8; 32]> = SMALL_ORDER_ENCODINGS.iter().copied().collect();
        assert_eq!(
            listed.len(),
            SMALL_ORDER_ENCODINGS.len(),
            "the list has duplicates"
        );
        let candidates = candidates();
        for candidate in &candidates {
            assert_eq!(
                is_weak(candidate),
                listed.contains(candidate),
                "{}",
                hex::encode(candidate)
            );
        }
        assert!(
            listed.is_subset(&candidates),
            "the list holds a non-candidate"
        );
        // Every torsion point in its canonical encoding is on the list.
        for point in EIGHT_TORSION {
            assert!(listed.contains(&point.compress().to_bytes()));
        }
    }

    #[test]
    fn keys_of_large_order_are_not_on_the_list() {
        for seed in [[0_u8; 32], [1; 32], [0xff; 32]] {
            let public = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
            assert!(!public.is_weak());
            assert!(!SMALL_ORDER_ENCODINGS.contains(public.as_bytes()));
        }
    }
}

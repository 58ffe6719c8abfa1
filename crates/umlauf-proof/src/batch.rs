//! Batch verification of Ed25519 signatures that never accepts what strict verification rejects.
//!
//! [`verify`] takes many (public key, message, signature) triples and returns, for each, exactly
//! the verdict of [`VerifyingKey::verify_strict`] (up to a failure probability of about 2^-128,
//! like any batch verifier), but several times faster than verifying them one by one.
//!
//! # Why not ed25519-dalek's `verify_batch`
//!
//! Strict verification is *cofactorless*: it accepts exactly when `R == [s]B − [k]A` as points,
//! with `s` canonical, `R` canonically encoded, and neither `R` nor `A` of small order
//! (`k = SHA-512(R ‖ A ‖ M) mod ℓ`). A random linear combination `Σ zᵢ(Rᵢ + [kᵢ]Aᵢ − [sᵢ]B) = 0`,
//! which is what `ed25519_dalek::verify_batch` checks, proves the prime-order part of every
//! error term zero, but not its torsion part: an error term of order 2 vanishes whenever its
//! `zᵢ` is even, and as the `zᵢ` are derived from the inputs a signer can grind its message
//! until they are. Such a signature exists only for a signer that puts a torsion component into
//! `R` (or holds a mixed-order key) on purpose, yet strict verification rejects it and the batch
//! would not (dalek-cryptography/ed25519-dalek#115, ZIP 215, Chalkias, Garillot and Nikolaenko,
//! "Taming the many EdDSAs", 2020). This module closes that gap:
//!
//! 1. **Rejected before the batch**, with the verdict strict verification gives: a signature
//!    that is not 64 bytes, a non-canonical `s` (`s ≥ ℓ`), an `R` whose encoding is not
//!    canonical (`y ≥ p`; strict verification compares the recomputed `R` byte for byte, so a
//!    non-canonical `R` never verifies) or not a point, an `R` of small order, a key of small
//!    order.
//! 2. **Not batched**, verified with `verify_strict` instead: triples whose key has a torsion
//!    component (a mixed-order key, which strict verification accepts if the equation holds
//!    exactly). Each distinct key of a call is checked once (small order, torsion).
//! 3. **Batched**: the rest, where `A` is torsion-free. One multiscalar multiplication checks
//!    `Σ zᵢRᵢ + Σ_A (Σ zᵢkᵢ)A − (Σ zᵢsᵢ)B = 0` (terms of one key coalesced), which makes each
//!    error term a torsion point; then 128 random subset sums of the `Rᵢ` must each be
//!    torsion-free, which makes every `Rᵢ` torsion-free except with probability 2^-128 (a subset
//!    sum misses a nonzero torsion vector with probability at most 1/2). With `Rᵢ` and `Aᵢ`
//!    torsion-free every error term is in the prime-order subgroup, where the first check
//!    leaves a false acceptance with probability about 2^-128 per batch.
//!
//! The coefficients `zᵢ` and the subsets are derived from a SHA-512 transcript of every input
//! (Fiat–Shamir, as ed25519-dalek does), so the function is deterministic and pure. If the batch
//! check fails, each batched triple is verified with `verify_strict` to find the culprits.
//!
//! This crate runs no threads: callers split large inputs into chunks and verify those in
//! parallel themselves.

use std::collections::HashMap;

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{Identity as _, IsIdentity as _, VartimeMultiscalarMul as _};
use sha2::{Digest as _, Sha512};

use crate::keys::VerifyingKey;
use crate::weak_keys::SMALL_ORDER_ENCODINGS;

/// How many random subset sums of the `R` points must be torsion-free: each misses a torsion
/// component with probability at most 1/2.
const TORSION_TESTS: usize = 128;

/// One bucket per value of a byte of the subset masks (bucket 0, the points in none of the
/// byte's subsets, stays empty).
const BUCKETS: usize = 256;

/// One signature to check: the key, the exact signed message, and the signature bytes.
#[derive(Debug, Clone, Copy)]
pub struct Triple<'a> {
    /// The public key.
    pub key: &'a VerifyingKey,
    /// The signed message (for DSSE, the PAE bytes).
    pub message: &'a [u8],
    /// The signature; anything but 64 bytes is rejected.
    pub signature: &'a [u8],
}

/// How the verdicts were reached, for statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchStats {
    /// Triples rejected by the pre-filter, without curve arithmetic beyond decompressing `R`.
    pub rejected_early: usize,
    /// Triples verified one by one because their key has a torsion component.
    pub verified_singly: usize,
    /// Triples checked by the batch equation.
    pub batched: usize,
    /// Triples verified one by one because the batch they were in failed.
    pub verified_after_failure: usize,
}

/// The verdict for each triple, in order: `true` exactly where
/// `triple.key.verify_strict(triple.message, signature)` accepts.
pub fn verify(triples: &[Triple<'_>]) -> Vec<bool> {
    verify_with_stats(triples).0
}

/// [`verify`], also telling how each verdict was reached.
pub fn verify_with_stats(triples: &[Triple<'_>]) -> (Vec<bool>, BatchStats) {
    let mut stats = BatchStats::default();
    let mut verdicts = vec![false; triples.len()];
    // Each distinct key's curve checks, done once per call: keys repeat across signatures.
    let mut key_indices: HashMap<&[u8; 32], usize> = HashMap::new();
    let mut keys: Vec<KeyInfo> = Vec::new();
    let mut batch: Vec<Candidate> = Vec::with_capacity(triples.len());

    for (index, triple) in triples.iter().enumerate() {
        let key = *key_indices.entry(triple.key.as_bytes()).or_insert_with(|| {
            keys.push(KeyInfo::of(triple.key));
            keys.len() - 1
        });
        let info = &keys[key];
        let Some(parsed) = prefilter(triple, info.weak) else {
            stats.rejected_early += 1;
            continue;
        };
        if !info.torsion_free {
            stats.verified_singly += 1;
            verdicts[index] = strict(triple);
            continue;
        }
        batch.push(Candidate {
            index,
            key,
            r_point: parsed.r_point,
            s: parsed.s,
            k: challenge(triple),
        });
    }

    stats.batched = batch.len();
    if batch_holds(triples, &keys, &batch) {
        for candidate in &batch {
            verdicts[candidate.index] = true;
        }
    } else {
        stats.verified_after_failure = batch.len();
        for candidate in &batch {
            verdicts[candidate.index] = strict(&triples[candidate.index]);
        }
    }
    (verdicts, stats)
}

/// What strict verification needs to know of a key's point, computed once per distinct key.
struct KeyInfo {
    /// The key's point.
    point: EdwardsPoint,
    /// Whether the key is of small order (`verify_strict` rejects every signature under it).
    weak: bool,
    /// Whether the key lies in the prime-order subgroup (only then are its signatures batched).
    torsion_free: bool,
}

impl KeyInfo {
    fn of(key: &VerifyingKey) -> Self {
        let point = key.to_edwards();
        Self {
            point,
            weak: key.is_weak(),
            torsion_free: point.is_torsion_free(),
        }
    }
}

/// A triple that passed the pre-filter and whose key is torsion-free.
struct Candidate {
    index: usize,
    /// The key's position in the call's list of distinct keys.
    key: usize,
    r_point: EdwardsPoint,
    s: Scalar,
    k: Scalar,
}

/// The decoded parts of a signature that passed the pre-filter.
struct Parsed {
    r_point: EdwardsPoint,
    s: Scalar,
}

/// `p = 2^255 - 19`, little-endian: a `y` coordinate at or above it is a non-canonical encoding.
const FIELD_PRIME: [u8; 32] = [
    0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
];

/// Whether the 255-bit `y` of a point encoding (sign bit cleared) is below `p`.
fn is_canonical_y(encoding: &[u8; 32]) -> bool {
    let mut y = *encoding;
    y[31] &= 0x7f;
    // Compare as little-endian integers, most significant byte first.
    for (byte, prime) in y.iter().rev().zip(FIELD_PRIME.iter().rev()) {
        if byte != prime {
            return byte < prime;
        }
    }
    false
}

/// Everything strict verification rejects without solving its equation: `None` means strict
/// verification rejects this triple, too.
fn prefilter(triple: &Triple<'_>, weak_key: bool) -> Option<Parsed> {
    // `verify_strict` refuses a weak key.
    if weak_key {
        return None;
    }
    let signature: &[u8; 64] = triple.signature.try_into().ok()?;
    let (r_bytes, s_bytes) = signature.split_at(32);
    let r_bytes: [u8; 32] = r_bytes.try_into().ok()?;
    let s_bytes: [u8; 32] = s_bytes.try_into().ok()?;
    // `verify_strict` refuses s ≥ ℓ.
    let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes))?;
    // `verify_strict` compares the canonical encoding of the recomputed R with these bytes, so a
    // non-canonical encoding never matches. (x = 0 with the sign bit set is the other
    // non-canonical form; it only occurs for y = ±1, which are of small order, below.)
    if !is_canonical_y(&r_bytes) {
        return None;
    }
    // `verify_strict` refuses an R of small order; the list holds every encoding that decodes
    // to one, so comparing bytes spares the curve arithmetic.
    if SMALL_ORDER_ENCODINGS.contains(&r_bytes) {
        return None;
    }
    // `verify_strict` refuses an R that is not a point.
    let r_point = CompressedEdwardsY(r_bytes).decompress()?;
    Some(Parsed { r_point, s })
}

/// `k = SHA-512(R ‖ A ‖ M) mod ℓ`, with A's bytes as given, as `verify_strict` computes it.
fn challenge(triple: &Triple<'_>) -> Scalar {
    let mut hasher = Sha512::new();
    hasher.update(&triple.signature[..32]);
    hasher.update(triple.key.as_bytes());
    hasher.update(triple.message);
    Scalar::from_bytes_mod_order_wide(&hasher.finalize().into())
}

fn strict(triple: &Triple<'_>) -> bool {
    ed25519_dalek::Signature::from_slice(triple.signature)
        .is_ok_and(|signature| triple.key.verify_strict(triple.message, &signature).is_ok())
}

/// The batch equation and the torsion tests over `batch`; `true` if every triple in it verifies.
fn batch_holds(triples: &[Triple<'_>], keys: &[KeyInfo], batch: &[Candidate]) -> bool {
    if batch.is_empty() {
        return true;
    }
    // The transcript binds every input: the challenge covers R, A and M, then s.
    let mut transcript = Sha512::new();
    transcript.update(b"umlauf batch verification v1");
    transcript.update((batch.len() as u64).to_le_bytes());
    for candidate in batch {
        transcript.update(candidate.k.as_bytes());
        transcript.update(&triples[candidate.index].signature[..64]);
        transcript.update(triples[candidate.index].key.as_bytes());
    }
    let seed: [u8; 64] = transcript.finalize().into();

    let mut z_coefficients = Vec::with_capacity(batch.len());
    let mut subsets = Vec::with_capacity(batch.len());
    for position in 0..batch.len() {
        let mut hasher = Sha512::new();
        hasher.update(seed);
        hasher.update((position as u64).to_le_bytes());
        let block: [u8; 64] = hasher.finalize().into();
        let (z_bytes, rest) = block.split_at(16);
        let (subset_bytes, _) = rest.split_at(16);
        z_coefficients.push(Scalar::from(u128::from_le_bytes(
            z_bytes.try_into().unwrap_or_default(),
        )));
        subsets.push(u128::from_le_bytes(
            subset_bytes.try_into().unwrap_or_default(),
        ));
    }

    // Σ zᵢRᵢ + Σ_A (Σ zᵢkᵢ)A − (Σ zᵢsᵢ)B, with the terms of one key coalesced.
    let mut basepoint_coefficient = Scalar::ZERO;
    let mut key_coefficients = vec![Scalar::ZERO; keys.len()];
    let mut scalars = Vec::with_capacity(batch.len() + keys.len() + 1);
    let mut points = Vec::with_capacity(batch.len() + keys.len() + 1);
    for (candidate, z) in batch.iter().zip(&z_coefficients) {
        basepoint_coefficient += z * candidate.s;
        key_coefficients[candidate.key] += z * candidate.k;
        scalars.push(*z);
        points.push(candidate.r_point);
    }
    for (coefficient, key) in key_coefficients.into_iter().zip(keys) {
        if coefficient != Scalar::ZERO {
            scalars.push(coefficient);
            points.push(key.point);
        }
    }
    scalars.push(-basepoint_coefficient);
    points.push(ED25519_BASEPOINT_POINT);
    if !EdwardsPoint::vartime_multiscalar_mul(&scalars, &points).is_identity() {
        return false;
    }

    torsion_free_subset_sums(batch, &subsets)
}

/// Whether each of the [`TORSION_TESTS`] subset sums of the `R` points is torsion-free; subset
/// `t` holds the points whose `subsets` entry has bit `t` set.
fn torsion_free_subset_sums(batch: &[Candidate], subsets: &[u128]) -> bool {
    let points: Vec<EdwardsPoint> = batch.iter().map(|candidate| candidate.r_point).collect();
    subset_sums(&points, subsets).iter().all(is_torsion_free)
}

/// Whether `point` lies in the prime-order subgroup, as [`EdwardsPoint::is_torsion_free`] says:
/// `[ℓ]point` is the identity, computed as `[ℓ − 1]point + point` in variable time (the points
/// are public), which costs less than the constant-time multiplication.
fn is_torsion_free(point: &EdwardsPoint) -> bool {
    // `−1` is the scalar ℓ − 1, which the multiplication takes as that integer.
    let order_minus_one = -Scalar::ONE;
    (EdwardsPoint::vartime_double_scalar_mul_basepoint(&order_minus_one, point, &Scalar::ZERO)
        + point)
        .is_identity()
}

/// The [`TORSION_TESTS`] subset sums: entry `t` is the sum of the points whose `subsets` entry
/// has bit `t` set.
///
/// Bucket method, one byte of the subset masks at a time: each point goes into the bucket of its
/// byte's value (one addition per point and byte, 16 in all, where summing each test directly
/// costs 64 and tables over groups of points about 32), then the eight sums of the byte's tests
/// are read off the 255 buckets by folding them in halves, about 500 additions per byte whatever
/// the batch's size.
fn subset_sums(points: &[EdwardsPoint], subsets: &[u128]) -> [EdwardsPoint; TORSION_TESTS] {
    let identity = EdwardsPoint::identity();
    let mut sums = [identity; TORSION_TESTS];
    let mut buckets = [identity; BUCKETS];
    for (byte, byte_sums) in sums.chunks_mut(8).enumerate() {
        buckets.fill(identity);
        for (point, bits) in points.iter().zip(subsets) {
            let value = usize::from(bits.to_le_bytes()[byte]);
            if value != 0 {
                buckets[value] += point;
            }
        }
        // Bit `bit` of the byte is the top bit of the `width` buckets still unfolded: the sum of
        // the upper half is that test's sum, and folding the upper half onto the lower keeps,
        // for each lower value, the sum over all values that agree with it in the lower bits.
        let mut width = BUCKETS;
        for bit in (0..8).rev() {
            let half = width / 2;
            let (lower, upper) = buckets[..width].split_at_mut(half);
            let mut sum = identity;
            for (low, high) in lower.iter_mut().zip(upper.iter()) {
                sum += high;
                *low += high;
            }
            byte_sums[bit] = sum;
            width = half;
        }
    }
    sums
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::Signer as _;

    use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
    use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
    use curve25519_dalek::scalar::Scalar;
    use curve25519_dalek::traits::Identity as _;

    use super::{
        FIELD_PRIME, SMALL_ORDER_ENCODINGS, TORSION_TESTS, Triple, is_canonical_y, is_torsion_free,
        strict, subset_sums, verify,
    };
    use crate::keys::signing_key_from_seed;

    #[test]
    fn every_small_order_r_is_rejected_as_strict_verification_rejects_it() {
        let signer = signing_key_from_seed([7; 32]);
        let key = signer.verifying_key();
        let message = b"a message";
        let valid = signer.sign(message).to_bytes();
        let signatures: Vec<[u8; 64]> = SMALL_ORDER_ENCODINGS
            .iter()
            .map(|encoding| {
                let mut signature = valid;
                signature[..32].copy_from_slice(encoding);
                signature
            })
            .chain([valid])
            .collect();
        let triples: Vec<Triple<'_>> = signatures
            .iter()
            .map(|signature| Triple {
                key: &key,
                message,
                signature,
            })
            .collect();
        let expected: Vec<bool> = triples.iter().map(strict).collect();
        assert_eq!(verify(&triples), expected);
        assert_eq!(expected.iter().filter(|verdict| **verdict).count(), 1);
    }

    #[test]
    fn torsion_freedom_is_what_dalek_says() {
        let torsion: Vec<EdwardsPoint> = SMALL_ORDER_ENCODINGS
            .iter()
            .filter_map(|encoding| CompressedEdwardsY(*encoding).decompress())
            .collect();
        for index in 0_u64..40 {
            let prime = ED25519_BASEPOINT_POINT * Scalar::from(index * 7919 + 3);
            for point in torsion
                .iter()
                .map(|small| prime + small)
                .chain([prime, EdwardsPoint::identity()])
            {
                assert_eq!(
                    is_torsion_free(&point),
                    point.is_torsion_free(),
                    "{index} {point:?}"
                );
            }
        }
    }

    #[test]
    fn canonical_y_is_below_the_field_prime() {
        let mut below = FIELD_PRIME;
        below[0] -= 1;
        assert!(is_canonical_y(&below));
        assert!(!is_canonical_y(&FIELD_PRIME));
        assert!(!is_canonical_y(&[0xff; 32]));
        let mut signed = [0_u8; 32];
        signed[31] = 0x80;
        assert!(is_canonical_y(&signed));
    }

    #[test]
    fn subset_sums_are_the_sums_of_the_subsets() {
        let torsion: Vec<EdwardsPoint> = SMALL_ORDER_ENCODINGS
            .iter()
            .filter_map(|encoding| CompressedEdwardsY(*encoding).decompress())
            .collect();
        let points: Vec<EdwardsPoint> = (0_u64..70)
            .map(|index| {
                ED25519_BASEPOINT_POINT * Scalar::from(index * 7919 + 3)
                    + torsion[usize::try_from(index).unwrap() % torsion.len()]
            })
            .collect();
        let subsets: Vec<u128> = (0_u128..70)
            .map(|index| {
                (index + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835) ^ (index << 64)
            })
            .collect();
        let sums = subset_sums(&points, &subsets);
        for (test, sum) in sums.iter().enumerate().take(TORSION_TESTS) {
            let expected = points
                .iter()
                .zip(&subsets)
                .filter(|(_, bits)| *bits >> test & 1 == 1)
                .fold(EdwardsPoint::identity(), |sum, (point, _)| sum + point);
            assert_eq!(*sum, expected, "test {test}");
        }
    }
}

//! Checked three ways: against jwt-simple (its keys, its signatures, its verdicts), against a
//! slow schoolbook big-integer reference written here, and against keys built so that a chosen
//! signature decrypts to a chosen (good or malformed) encoding, for exponents other than 65537.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwt_simple::prelude::*;

use super::*;

/// These tests also run compiled to wasm, unoptimised, where one verification takes
/// milliseconds: there, the exhaustive loops sample more sparsely.
const SLOW: bool = cfg!(target_arch = "wasm32");

struct Vector {
    bits: usize,
    n: &'static str,
    e: &'static str,
    tokens: &'static [&'static str],
}

fn b64d(s: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(s).unwrap()
}

/// The signed bytes (`header.payload`) and the signature of a compact JWS.
fn split(token: &str) -> (Vec<u8>, Vec<u8>) {
    let (message, signature) = token.rsplit_once('.').unwrap();
    (message.as_bytes().to_vec(), b64d(signature))
}

fn vector_verifier(v: &Vector) -> RsaVerifier {
    RsaVerifier::from_components(&b64d(v.n), &b64d(v.e)).unwrap()
}

fn jwt_simple_accepts(n: &[u8], e: &[u8], token: &str) -> bool {
    RS256PublicKey::from_components(n, e)
        .unwrap()
        .verify_token::<serde_json::Value>(token, None)
        .is_ok()
}

/// An RS256 JWT with no time claims (so it never expires); `i` varies the subject and the
/// payload length (one to several SHA-256 blocks).
#[cfg(not(target_arch = "wasm32"))]
fn make_token(key: &RS256KeyPair, i: usize) -> String {
    let pad = "x".repeat([0, 40, 300, 2500][i % 4]);
    let custom = serde_json::json!({"sub": format!("user-{i}"), "pad": pad});
    let mut claims = Claims::with_custom_claims(custom, Duration::from_hours(1));
    claims.issued_at = None;
    claims.expires_at = None;
    claims.invalid_before = None;
    key.sign(claims).unwrap()
}

/// Big-endian bytes of `limbs`, exactly `k` long (the dropped high bytes must be zero).
fn to_be(limbs: &[u32], k: usize) -> Vec<u8> {
    let bytes: Vec<u8> = limbs.iter().rev().flat_map(|l| l.to_be_bytes()).collect();
    let cut = bytes.len().saturating_sub(k);
    assert!(
        bytes[..cut].iter().all(|&b| b == 0),
        "value wider than {k} bytes"
    );
    let mut out = vec![0u8; k.saturating_sub(bytes.len())];
    out.extend_from_slice(&bytes[cut..]);
    out
}

fn flip_bit(bytes: &[u8], bit: usize) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[bit / 8] ^= 0x80 >> (bit % 8);
    out
}

/// Deterministic splitmix64, so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }

    fn limbs(&mut self, len: usize) -> Vec<u32> {
        (0..len).map(|_| self.next_u32()).collect()
    }

    /// Uniform-ish below `n` (top limb strictly smaller), with 0, 1 and n-1 now and then.
    fn below_n(&mut self, n: &[u32]) -> Vec<u32> {
        let mut x = vec![0u32; n.len()];
        match self.below(16) {
            0 => {}
            1 => x[0] = 1,
            2 => {
                x.copy_from_slice(n);
                x[0] -= 1; // n is odd, so no borrow
            }
            _ => {
                x = self.limbs(n.len());
                let top = n.len() - 1;
                x[top] = if n[top] == 0 { 0 } else { x[top] % n[top] };
            }
        }
        x
    }
}

/// Slow, obviously correct big-integer arithmetic on little-endian u32 limbs.
mod reference {
    use std::cmp::Ordering;

    pub fn cmp(a: &[u32], b: &[u32]) -> Ordering {
        let len = a.len().max(b.len());
        for i in (0..len).rev() {
            let x = a.get(i).copied().unwrap_or(0);
            let y = b.get(i).copied().unwrap_or(0);
            if x != y {
                return x.cmp(&y);
            }
        }
        Ordering::Equal
    }

    /// `a - b` for `a >= b`, as many limbs as `a`.
    pub fn sub(a: &[u32], b: &[u32]) -> Vec<u32> {
        assert_ne!(cmp(a, b), Ordering::Less);
        let mut out = a.to_vec();
        let mut borrow = 0i64;
        for (i, limb) in out.iter_mut().enumerate() {
            let d = i64::from(*limb) - i64::from(b.get(i).copied().unwrap_or(0)) - borrow;
            *limb = d as u32;
            borrow = i64::from(d < 0);
        }
        assert_eq!(borrow, 0);
        out
    }

    pub fn add(a: &[u32], b: &[u32]) -> Vec<u32> {
        let len = a.len().max(b.len()) + 1;
        let mut out = vec![0u32; len];
        let mut carry = 0u64;
        for (i, limb) in out.iter_mut().enumerate() {
            let s = u64::from(a.get(i).copied().unwrap_or(0))
                + u64::from(b.get(i).copied().unwrap_or(0))
                + carry;
            *limb = s as u32;
            carry = s >> 32;
        }
        out
    }

    pub fn mul(a: &[u32], b: &[u32]) -> Vec<u32> {
        let mut out = vec![0u32; a.len() + b.len()];
        for (i, &x) in a.iter().enumerate() {
            let mut carry = 0u64;
            for (j, &y) in b.iter().enumerate() {
                let t = u64::from(out[i + j]) + u64::from(x) * u64::from(y) + carry;
                out[i + j] = t as u32;
                carry = t >> 32;
            }
            out[i + b.len()] = carry as u32;
        }
        out
    }

    /// `x mod n` by binary long division, as many limbs as `n`.
    pub fn rem(x: &[u32], n: &[u32]) -> Vec<u32> {
        let mut r = vec![0u32; n.len() + 1];
        for bit in (0..x.len() * 32).rev() {
            let mut carry = (x[bit / 32] >> (bit % 32)) & 1;
            for limb in r.iter_mut() {
                let next = *limb >> 31;
                *limb = (*limb << 1) | carry;
                carry = next;
            }
            if cmp(&r, n) != Ordering::Less {
                r = sub(&r, n);
            }
        }
        r.truncate(n.len());
        r
    }

    pub fn mul_mod(a: &[u32], b: &[u32], n: &[u32]) -> Vec<u32> {
        rem(&mul(a, b), n)
    }

    pub fn pow_mod(s: &[u32], e: u32, n: &[u32]) -> Vec<u32> {
        let mut result = rem(&[1], n);
        let mut base = rem(s, n);
        let mut e = e;
        while e > 0 {
            if e & 1 == 1 {
                result = mul_mod(&result, &base, n);
            }
            e >>= 1;
            if e > 0 {
                base = mul_mod(&base, &base, n);
            }
        }
        result
    }

    /// `s^e` exactly.
    pub fn pow(s: &[u32], e: u32) -> Vec<u32> {
        let mut result = vec![1u32];
        for _ in 0..e {
            result = mul(&result, s);
            while result.len() > 1 && result.last() == Some(&0) {
                result.pop();
            }
        }
        result
    }
}

/// The SHA-256 DigestInfo prefix, written out again here rather than reusing the module's.
const DI: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

fn sha256(message: &[u8]) -> Vec<u8> {
    Sha256::digest(message).to_vec()
}

/// `00 01 FF.. 00 || prefix || tail`, padded with FF to `k` bytes.
fn pkcs1(k: usize, prefix: &[u8], tail: &[u8]) -> Vec<u8> {
    let mut em = vec![0x00, 0x01];
    em.resize(k - 1 - prefix.len() - tail.len(), 0xff);
    em.push(0x00);
    em.extend_from_slice(prefix);
    em.extend_from_slice(tail);
    assert_eq!(em.len(), k);
    em
}

/// A key under which `signature` "decrypts" to exactly `em`: picks `s` just under `2^(8k/e)`
/// and sets `n = s^e - em`, so `s^e mod n = em`. Not a real RSA key (n is not a product of two
/// primes), but the verifier only ever uses n, e and s. Needs `8k` divisible by `e`.
fn key_decrypting_to(em: &[u8], e: u32, rng: &mut Rng) -> (RsaVerifier, Vec<u8>, Vec<u32>) {
    let k = em.len();
    assert_eq!(8 * k % e as usize, 0);
    let b = 8 * k / e as usize;
    // s = 2^b - r with r small enough that s^e keeps its top bit near bit 8k.
    let r_bits = b
        .saturating_sub(3 + 32 - e.leading_zeros() as usize)
        .min(60);
    let mut r = if r_bits == 0 {
        0
    } else {
        rng.next_u64() >> (64 - r_bits)
    };
    // n = s^e - em must be odd: s and em of opposite parity (s's parity is r's).
    let em_odd = em.last().unwrap() & 1 == 1;
    if (r & 1 == 1) == em_odd {
        r ^= 1;
    }
    if r == 0 {
        r = 2;
    }
    let all_ones: Vec<u32> = {
        let mut v = vec![u32::MAX; b.div_ceil(32)];
        if b % 32 != 0 {
            *v.last_mut().unwrap() = (1 << (b % 32)) - 1;
        }
        v
    };
    let s = reference::sub(&all_ones, &[(r - 1) as u32, ((r - 1) >> 32) as u32]);
    let em_limbs = limbs_from_be(em, k.div_ceil(4));
    let n = reference::sub(&reference::pow(&s, e), &em_limbs);
    let n_bytes = to_be(&n, k);
    let verifier = RsaVerifier::from_components(&n_bytes, &e.to_be_bytes()).unwrap();
    assert_eq!(verifier.k, k, "e={e}: modulus is not {k} bytes");
    (verifier, to_be(&s, k), s)
}

#[test]
fn jwt_simple_signatures_verify() {
    for v in VECTORS {
        let verifier = vector_verifier(v);
        assert_eq!(verifier.bits(), v.bits);
        for token in v.tokens {
            let (message, signature) = split(token);
            assert!(
                verifier.verify_sha256(&message, &signature),
                "{} bits",
                v.bits
            );
            assert!(jwt_simple_accepts(&b64d(v.n), &b64d(v.e), token));
        }
    }
}

#[test]
fn wrong_key_refused() {
    for v in VECTORS {
        let n = b64d(v.n);
        // Same size, one bit changed (still odd).
        let mut near = n.clone();
        *near.last_mut().unwrap() ^= 0x02;
        let near = RsaVerifier::from_components(&near, &b64d(v.e)).unwrap();
        let e3 = RsaVerifier::from_components(&n, &[3]).unwrap();
        let e65539 = RsaVerifier::from_components(&n, &[1, 0, 3]).unwrap();
        for token in v.tokens {
            let (message, signature) = split(token);
            assert!(!near.verify_sha256(&message, &signature));
            assert!(!e3.verify_sha256(&message, &signature));
            assert!(!e65539.verify_sha256(&message, &signature));
            for other in VECTORS.iter().filter(|o| o.bits != v.bits) {
                assert!(!vector_verifier(other).verify_sha256(&message, &signature));
            }
        }
    }
}

#[test]
fn signature_bit_flips_refused() {
    for v in VECTORS {
        let verifier = vector_verifier(v);
        let (message, signature) = split(v.tokens[0]);
        // Every bit of the first and last bytes (the high ones push s past n), and a spread
        // in between.
        let bits = signature.len() * 8;
        let (edge, stride) = if SLOW { (16, bits / 24) } else { (64, 13) };
        let flips = (0..edge)
            .chain(bits - edge..bits)
            .chain((edge..bits - edge).step_by(stride));
        for bit in flips {
            let flipped = flip_bit(&signature, bit);
            assert!(!verifier.verify_sha256(&message, &flipped), "bit {bit}");
        }
    }
}

#[test]
fn message_bit_flips_refused() {
    let v = &VECTORS[0];
    let verifier = vector_verifier(v);
    let (message, signature) = split(v.tokens[0]);
    for bit in (0..message.len() * 8).step_by(if SLOW { 5 } else { 1 }) {
        assert!(
            !verifier.verify_sha256(&flip_bit(&message, bit), &signature),
            "bit {bit}"
        );
    }
    let mut longer = message.clone();
    longer.push(b'x');
    assert!(!verifier.verify_sha256(&longer, &signature));
    assert!(!verifier.verify_sha256(&message[..message.len() - 1], &signature));
    assert!(!verifier.verify_sha256(b"", &signature));
    // Another token's message with this signature.
    let (other, _) = split(v.tokens[1]);
    assert!(!verifier.verify_sha256(&other, &signature));
}

#[test]
fn signature_of_wrong_length_refused() {
    for v in VECTORS {
        let verifier = vector_verifier(v);
        for token in v.tokens {
            let (message, signature) = split(token);
            let mut leading_zero = vec![0u8];
            leading_zero.extend_from_slice(&signature);
            let mut trailing_zero = signature.clone();
            trailing_zero.push(0);
            for bad in [
                &signature[1..],
                &signature[..signature.len() - 1],
                &leading_zero[..],
                &trailing_zero[..],
                &[][..],
                &[0u8][..],
            ] {
                assert!(
                    !verifier.verify_sha256(&message, bad),
                    "length {}",
                    bad.len()
                );
            }
        }
    }
}

/// A signature whose value is much shorter than n still travels as k bytes; the same number
/// without its leading zero bytes must be refused all the same.
#[test]
fn short_encoding_of_a_valid_signature_refused() {
    let em = pkcs1(258, &DI, &sha256(b"leading zero"));
    let (verifier, signature, _) = key_decrypting_to(&em, 3, &mut Rng(7));
    assert_eq!(signature[0], 0, "s is far shorter than n");
    assert!(verifier.verify_sha256(b"leading zero", &signature));
    let first = signature.iter().position(|&b| b != 0).unwrap();
    for cut in 1..=first {
        assert!(!verifier.verify_sha256(b"leading zero", &signature[cut..]));
    }
}

#[test]
fn signature_out_of_range_refused() {
    let mut with_n_added = 0;
    for v in VECTORS {
        let verifier = vector_verifier(v);
        let n = b64d(v.n);
        let k = n.len();
        let n_limbs = limbs_from_be(&n, k.div_ceil(4));
        for token in v.tokens {
            let (message, signature) = split(token);
            let s = limbs_from_be(&signature, n_limbs.len());
            let n_plus_1 = reference::add(&n_limbs, &[1]);
            let n_minus_1 = reference::sub(&n_limbs, &[1]);
            let mut bad = vec![
                n.clone(),
                to_be(&n_plus_1, k),
                to_be(&n_minus_1, k),
                vec![0u8; k],
                to_be(&[1], k),
                to_be(&[2], k),
                vec![0xff; k],
            ];
            // s + n is the same residue as s: only the range check refuses it.
            let s_plus_n = reference::add(&s, &n_limbs);
            if reference::cmp(&s_plus_n, &limbs_from_be(&vec![0xff; k], s_plus_n.len()))
                == std::cmp::Ordering::Less
            {
                bad.push(to_be(&s_plus_n, k));
                with_n_added += 1;
            }
            for b in &bad {
                assert!(!verifier.verify_sha256(&message, b));
            }
        }
    }
    assert!(with_n_added > 0, "no vector left room for s + n");
}

#[test]
fn from_components_refusals() {
    let n = b64d(VECTORS[0].n);
    let e = [1u8, 0, 1];
    let ok = |n: &[u8], e: &[u8]| RsaVerifier::from_components(n, e);
    let refused = |n: &[u8], e: &[u8], why: &str| {
        let err = RsaVerifier::from_components(n, e).unwrap_err();
        assert!(err.contains(why), "{err:?} should mention {why:?}");
    };

    let mut even = n.clone();
    *even.last_mut().unwrap() &= 0xfe;
    refused(&even, &e, "even");
    refused(&n[1..], &e, "fewer than the minimum 2048");
    refused(&[], &e, "0 bits");
    refused(&[0, 0, 0], &e, "0 bits");
    let mut too_big = vec![0x01];
    too_big.extend(std::iter::repeat_n(0xab, 1024)); // 8193 bits
    refused(&too_big, &e, "8193 bits, more than the maximum 8192");
    refused(&n, &[1, 0, 0], "even");
    refused(&n, &[0], "even");
    refused(&n, &[], "even");
    refused(&n, &[1], "is 1");
    refused(&n, &[0, 0, 1], "is 1");
    refused(&n, &[1, 0, 0, 0, 1], "longer than 32 bits");

    // Leading zeros anywhere are fine; the extremes of each range are accepted.
    let mut padded = vec![0, 0];
    padded.extend_from_slice(&n);
    assert_eq!(ok(&padded, &[0, 0, 0, 1, 0, 1]).unwrap().bits(), 2048);
    assert_eq!(ok(&n, &[0xff, 0xff, 0xff, 0xff]).unwrap().bits(), 2048);
    assert_eq!(ok(&n, &[3]).unwrap().bits(), 2048);
    let mut largest = vec![0xff; 1024];
    *largest.last_mut().unwrap() = 0xfd;
    assert_eq!(ok(&largest, &e).unwrap().bits(), 8192);
    let mut smallest = vec![0u8; 256];
    smallest[0] = 0x80;
    smallest[255] = 0x01;
    assert_eq!(ok(&smallest, &e).unwrap().bits(), 2048);
}

#[test]
fn debug_shows_size_not_modulus() {
    let text = format!("{:?}", vector_verifier(&VECTORS[2]));
    assert!(text.contains("bits: 4096"), "{text}");
    assert!(text.contains("e: 65537"), "{text}");
    assert!(text.contains("limbs: 128"), "{text}");
    assert!(text.len() < 120, "{text}");
}

/// Exponents other than 65537, end to end: keys built so that a chosen s satisfies
/// s^e mod n = EM exactly, checked against the reference too.
#[test]
fn other_exponents_verify() {
    let mut rng = Rng(1);
    // (e, k): 8k divisible by e.
    for (e, k) in [
        (3, 258),
        (3, 384),
        (5, 260),
        (17, 272),
        (257, 257),
        (3, 1023),
    ] {
        for round in 0..if SLOW { 1 } else { 3 } {
            let message = format!("e={e} k={k} round={round}");
            let em = pkcs1(k, &DI, &sha256(message.as_bytes()));
            let (verifier, signature, s) = key_decrypting_to(&em, e, &mut rng);
            assert!(verifier.bits() >= 2048, "e={e} k={k}");
            let em_limbs = limbs_from_be(&em, verifier.modulus.n.len());
            assert_eq!(verifier.modulus.pow(&s_padded(&s, &verifier), e), em_limbs);
            if k <= 384 {
                let r = reference::pow_mod(&s, e, &verifier.modulus.n);
                assert_eq!(r, em_limbs, "reference disagrees: e={e} k={k}");
            }
            assert!(
                verifier.verify_sha256(message.as_bytes(), &signature),
                "e={e} k={k}"
            );
            assert!(!verifier.verify_sha256(b"other", &signature));
            let n_bytes = to_be(&verifier.modulus.n, k);
            let wrong_e = if e == 3 { 5u32 } else { 3 };
            let other = RsaVerifier::from_components(&n_bytes, &wrong_e.to_be_bytes()).unwrap();
            assert!(!other.verify_sha256(message.as_bytes(), &signature));
        }
    }
}

fn s_padded(s: &[u32], verifier: &RsaVerifier) -> Vec<u32> {
    let mut s = s.to_vec();
    s.resize(verifier.modulus.n.len(), 0);
    s
}

/// Encodings that lenient parsers have accepted (Bleichenbacher 2006 and its descendants):
/// each is what the signature really decrypts to, and each must be refused.
#[test]
fn malformed_encodings_refused() {
    let message = b"header.payload";
    let h = sha256(message);
    let k = 258;
    let mut di_no_null = vec![0x30, 0x2f, 0x30, 0x0b, 0x06, 0x09];
    di_no_null.extend_from_slice(&DI[6..15]);
    di_no_null.extend_from_slice(&[0x04, 0x20]);
    let mut di_long_length = vec![0x30, 0x81, 0x31];
    di_long_length.extend_from_slice(&DI[2..]);
    let mut di_sha512_oid = DI.to_vec();
    di_sha512_oid[14] = 0x03;
    let mut h_then_garbage = DI.to_vec();
    h_then_garbage.extend_from_slice(&h);
    h_then_garbage.extend_from_slice(&[0xaa; 40]);
    let mut di_33 = DI.to_vec();
    di_33[1] = 0x32;
    di_33[18] = 0x21;
    let mut h33 = h.clone();
    h33.push(0);

    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("no NULL parameters", pkcs1(k, &di_no_null, &h)),
        ("long-form length", pkcs1(k, &di_long_length, &h)),
        ("SHA-512 OID", pkcs1(k, &di_sha512_oid, &h)),
        ("garbage after the hash", pkcs1(k, &h_then_garbage, &[])),
        ("33-byte digest", pkcs1(k, &di_33, &h33)),
        ("hash of another message", pkcs1(k, &DI, &sha256(b"other"))),
        ("no DigestInfo", pkcs1(k, &[], &h)),
    ];
    let good = pkcs1(k, &DI, &h);
    let mut block_type_2 = good.clone();
    block_type_2[1] = 0x02;
    cases.push(("block type 2", block_type_2));
    let mut not_ff = good.clone();
    not_ff[100] = 0xfe;
    cases.push(("padding byte not FF", not_ff));
    let mut no_separator = good.clone();
    no_separator[k - 52] = 0xff;
    cases.push(("no zero separator", no_separator));
    let mut short_padding = vec![0x00, 0x01];
    short_padding.extend_from_slice(&[0xff; 8]);
    short_padding.push(0x00);
    short_padding.extend_from_slice(&DI);
    short_padding.extend_from_slice(&h);
    short_padding.resize(k, 0x00);
    cases.push(("hash early, zero filled", short_padding));
    let mut leading = vec![0x00];
    leading.extend_from_slice(&good[..k - 1]);
    cases.push(("shifted right", leading));
    let mut first_byte = good.clone();
    first_byte[0] = 0x01;
    cases.push(("first byte not zero", first_byte));

    let mut rng = Rng(2);
    for (what, em) in cases {
        assert_eq!(em.len(), k, "{what}");
        let (verifier, signature, s) = key_decrypting_to(&em, 3, &mut rng);
        // The signature really decrypts to the malformed encoding...
        let em_limbs = limbs_from_be(&em, verifier.modulus.n.len());
        assert_eq!(
            verifier.modulus.pow(&s_padded(&s, &verifier), 3),
            em_limbs,
            "{what}"
        );
        // ...and is refused.
        assert!(!verifier.verify_sha256(message, &signature), "{what}");
    }
    // The same construction with the right encoding is accepted.
    let (verifier, signature, _) = key_decrypting_to(&good, 3, &mut rng);
    assert!(verifier.verify_sha256(message, &signature));
}

/// Montgomery constants, products and powers against the schoolbook reference, over random odd
/// moduli of 1 to 64 limbs (including awkward top and bottom limbs).
#[test]
fn montgomery_matches_reference() {
    let mut rng = Rng(3);
    for case in 0..200 {
        let len = 1 + rng.below(if SLOW { 24 } else { 64 }) as usize;
        let mut n = rng.limbs(len);
        match case % 5 {
            0 => n[len - 1] = 1,
            1 => n[len - 1] = u32::MAX,
            2 => n[0] = 1,
            3 => n.fill(u32::MAX),
            _ => {}
        }
        n[0] |= 1;
        if n[len - 1] == 0 {
            n[len - 1] = 1;
        }
        if len == 1 && n[0] == 1 {
            n[0] = 3;
        }
        let modulus = Modulus::new(n.clone()).unwrap();
        assert_eq!(n[0].wrapping_mul(modulus.n0inv), u32::MAX, "case {case}");
        let mut r2 = vec![0u32; 2 * len];
        r2.push(1);
        assert_eq!(modulus.rr, reference::rem(&r2, &n), "case {case}: R^2");

        let a = rng.below_n(&n);
        let b = rng.below_n(&n);
        let mut out = vec![0u32; len];
        let mut wide = vec![0u64; 2 * len];
        modulus.mont_mul(&a, &b, &mut out, &mut wide);
        assert_eq!(
            reference::cmp(&out, &n),
            std::cmp::Ordering::Less,
            "case {case}"
        );
        // out = a·b·R⁻¹, so out·R ≡ a·b.
        let mut shifted = vec![0u32; len];
        shifted.extend_from_slice(&out);
        assert_eq!(
            reference::rem(&shifted, &n),
            reference::mul_mod(&a, &b, &n),
            "case {case}: product"
        );
        let mut square = vec![0u32; len];
        modulus.mont_sqr(&a, &mut square, &mut wide);
        modulus.mont_mul(&a, &a, &mut out, &mut wide);
        assert_eq!(square, out, "case {case}: square");

        let e = match (case % 4, len) {
            (0, _) => 65537,
            (1, _) => 3,
            (2, ..=8) => rng.next_u32(),
            (2, _) => rng.next_u32() >> 20,
            _ => [0, 1, 2, u32::MAX, 0x8000_0000, 0x8000_0001][case / 4 % 6],
        };
        let e = if len > 16 && e > 65537 { 17 } else { e };
        assert_eq!(
            modulus.pow(&a, e),
            reference::pow_mod(&a, e, &n),
            "case {case}: pow e={e}"
        );
    }
}

/// Every limb at its maximum loads the columns most. With n = 2^(32L) - 1, R ≡ 1 (mod n), so
/// Montgomery products are plain products and the answers are known: (-1)² = 1, (-2)² = 4.
#[test]
fn largest_limbs_do_not_overflow() {
    for len in [63, 64, 255, 256] {
        let n = vec![u32::MAX; len];
        let modulus = Modulus::new(n.clone()).unwrap();
        let minus = |k: u32| {
            let mut x = n.clone();
            x[0] -= k;
            x
        };
        let small = |k: u32| {
            let mut x = vec![0u32; len];
            x[0] = k;
            x
        };
        let mut out = vec![0u32; len];
        let mut wide = vec![0u64; 2 * len];
        modulus.mont_sqr(&minus(1), &mut out, &mut wide);
        assert_eq!(out, small(1), "L={len}");
        modulus.mont_mul(&minus(1), &minus(1), &mut out, &mut wide);
        assert_eq!(out, small(1), "L={len}");
        modulus.mont_sqr(&minus(2), &mut out, &mut wide);
        assert_eq!(out, small(4), "L={len}");
        modulus.mont_mul(&minus(1), &minus(2), &mut out, &mut wide);
        assert_eq!(out, small(2), "L={len}");
        assert_eq!(modulus.pow(&minus(1), 65537), minus(1), "L={len}");
        assert_eq!(modulus.pow(&minus(1), u32::MAX), minus(1), "L={len}");
        assert_eq!(modulus.pow(&minus(2), 3), minus(8), "L={len}");
    }
}

#[test]
fn modulus_refuses_unusable_values() {
    assert!(Modulus::new(vec![]).is_none());
    assert!(Modulus::new(vec![1]).is_none());
    assert!(Modulus::new(vec![4]).is_none());
    assert!(Modulus::new(vec![3, 0]).is_none());
    assert!(Modulus::new(vec![3]).is_some());
}

/// Fresh keys from jwt-simple (native only: key generation is slow in the wasm debug build),
/// with jwt-simple's verdict as the oracle on good and tampered tokens.
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn fresh_keys_agree_with_jwt_simple() {
    // Generated in parallel: the 4096-bit one alone takes seconds.
    let keys: Vec<RS256KeyPair> = std::thread::scope(|scope| {
        let handles: Vec<_> = [2048, 2048, 3072, 4096]
            .map(|bits| scope.spawn(move || RS256KeyPair::generate(bits).unwrap()))
            .into_iter()
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut rng = Rng(4);
    for (index, key) in keys.iter().enumerate() {
        let c = key.public_key().to_components();
        let verifier = RsaVerifier::from_components(&c.n, &c.e).unwrap();
        assert_eq!(verifier.bits(), c.n.len() * 8);
        let other = &keys[if index == 0 { 1 } else { 0 }];
        let oc = other.public_key().to_components();
        let other_verifier = RsaVerifier::from_components(&oc.n, &oc.e).unwrap();
        for i in 0..12 {
            let token = make_token(key, i);
            let (message, signature) = split(&token);
            assert!(verifier.verify_sha256(&message, &signature));
            assert!(jwt_simple_accepts(&c.n, &c.e, &token));
            assert!(!other_verifier.verify_sha256(&message, &signature));

            let bit = rng.below(signature.len() as u64 * 8) as usize;
            let flipped = flip_bit(&signature, bit);
            let tampered = format!(
                "{}.{}",
                std::str::from_utf8(&message).unwrap(),
                URL_SAFE_NO_PAD.encode(&flipped)
            );
            assert!(!verifier.verify_sha256(&message, &flipped));
            assert!(!jwt_simple_accepts(&c.n, &c.e, &tampered));

            let bit = rng.below(message.len() as u64 * 8) as usize;
            assert!(!verifier.verify_sha256(&flip_bit(&message, bit), &signature));
        }
    }
}

/// µs per 2048-bit verification, this module against jwt-simple on the same key and token:
/// `cargo test --release --lib keys::rsa::tests::rsa_verify_timing -- --ignored --nocapture`
/// (and the same with `--target wasm32-wasip1`). Each of the 200 runs is timed on its own and
/// the median printed with the mean, as a shared machine's noise skews means.
#[test]
#[ignore]
fn rsa_verify_timing() {
    use std::hint::black_box;
    use std::time::{Duration, Instant};
    const ROUNDS: usize = 200;
    fn time(mut f: impl FnMut() -> bool) -> String {
        // Warm up first: V8 compiles hot wasm functions again, optimised, after a while.
        for _ in 0..ROUNDS / 4 {
            assert!(f());
        }
        let mut runs: Vec<Duration> = (0..ROUNDS)
            .map(|_| {
                let start = Instant::now();
                assert!(f());
                start.elapsed()
            })
            .collect();
        runs.sort();
        let mean = runs.iter().sum::<Duration>() / ROUNDS as u32;
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        format!("{:.1} µs (mean {:.1})", us(runs[ROUNDS / 2]), us(mean))
    }

    let v = &VECTORS[0];
    let (n, e) = (b64d(v.n), b64d(v.e));
    let token = v.tokens[0];
    let (message, signature) = split(token);
    let start = Instant::now();
    let verifier = RsaVerifier::from_components(&n, &e).unwrap();
    let setup = start.elapsed();
    let key = RS256PublicKey::from_components(&n, &e).unwrap();

    let ours =
        time(|| black_box(&verifier).verify_sha256(black_box(&message), black_box(&signature)));
    let theirs = time(|| {
        black_box(&key)
            .verify_token::<serde_json::Value>(black_box(token), None)
            .is_ok()
    });
    println!(
        "RS256 2048-bit verify, median of {ROUNDS}: keys::rsa {ours}, jwt-simple verify_token \
         {theirs}; keys::rsa key setup (first call) {:.1} µs",
        setup.as_secs_f64() * 1e6
    );
}

/// Regenerates [`VECTORS`]: `cargo test --lib keys::rsa::tests::print_test_vectors -- --ignored
/// --nocapture`.
#[cfg(not(target_arch = "wasm32"))]
#[test]
#[ignore]
fn print_test_vectors() {
    for bits in [2048, 3072, 4096] {
        let key = RS256KeyPair::generate(bits).unwrap();
        let c = key.public_key().to_components();
        println!("n{bits} = {}", URL_SAFE_NO_PAD.encode(&c.n));
        println!("e{bits} = {}", URL_SAFE_NO_PAD.encode(&c.e));
        for i in 0..4 {
            println!("t{bits}_{i} = {}", make_token(&key, i));
        }
    }
}

/// Keys and RS256 JWTs made by jwt-simple (`print_test_vectors`), fixed so the wasm run needs no
/// key generation. The tokens carry no time claims, so they never expire.
const VECTORS: &[Vector] = &[
    Vector {
        bits: 2048,
        n: "qjM7xuqCLy3mfTito9ogWUYIH7CvQ1--p3r2GYtrs5WNjxp_l0pwyP0t-hxxn-Zy6pF6-jravjR9-lSAxT91Rfp_lqy0ak8IuJ3GdIUe0DsLXwrnwTpmotnas2UFQMmREcgwhjcD64aHskOw-iL4-6PD8MSlEdIwWu3kKCMq3UC0MJyYI2QNHi0Hy0eZggPL53MmUH_BMT0uysFKTefR0M1nTSeOOTdPvNY-9H6mo161YPM7iGKJV3MJvAN2EyenXyOKwfNv65yJYbpZYK6Zh_nBdwQPs6L3rTBhEuqKQ_mU0JNFgyeakrjggp_agP6n4Juh0iQlwntc3MPEIwJPAQ",
        e: "AQAB",
        tokens: &[
            "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsyMDQ4IiwidHlwIjoiSldUIn0.eyJwYWQiOiIiLCJzdWIiOiJ1c2VyLTAifQ.MYT-Wvt0sBydDvHtqs2KD2NgpAJaCwkytYTBO0CZUIxgI0ZVzCUA9qwymnx1pzDhyaedKYw5CE1W1Dm91zv1WJrJzvSJj0301tFESnKXFcaZJMeC6z-c3VsKXwc31bSZbDtzjOWeZOUFy6C7SN4GDYF-Zvg0IftjvgaBB_wYsRoGQ-A7hxdOzBIxFdPJiC714wTLaHpBDyfoQ270_j2M6wg91BYXG0SkixgzlbQDSZvE0g76-_Mucyfur12Esgyk_KHRS68R5OmqlshPulOsyC3lSYaka1O-NF4_zTRLAvsWOOMuIKXc5CYtFu04jTb_puyCBVuGFvwwXU5bXVSncg",
            "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsyMDQ4IiwidHlwIjoiSldUIn0.eyJwYWQiOiJ4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4Iiwic3ViIjoidXNlci0xIn0.nKkCxhWb8Y-jtY5YPmMgDprUT76ydCSb4zqU2fN9_Al5GRMQmJxxcb6hg0aNbR4V86ZWTgjZeaeCdpnGzTuo7ziH-7QBtoW7TMgg75Ef63ve7UGNz5ciAeTtKABADDgnzBpBqqaDFDN3dIaoDQKhGxYMIs7bBgjRCUHbWpPMp2Ripi4Oy7JDpkHlKLvv55G6P5MAnK4hKeuxzKAbiMtuajzFfwcgvZUHICqBhT6DULdMgUpbojaWopJowoCJvI6DQtyWQT75rSOCiLx7TtggbrKKFNK4tnHG-LXB-or7QaISs1jYIc2FDM2vn3AN4I-bWLURRpJUecmkEgH2OHKk9Q",
            "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsyMDQ4IiwidHlwIjoiSldUIn0.eyJwYWQiOiJ4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHgiLCJzdWIiOiJ1c2VyLTIifQ.jft_oesdYKUGTq11fMonZ3oQYE-DR2i6pRQ4w0eVgRD2Jyho0Y-6fiYF266t5L2fjtPFwz9coFr-oaIbRFRwTKpTdwlQ3nnnVRhEJLKF2XBYHvVMZmXFJCl89MozHcOg91kg46Ik-NMWFnhldWueX6YDx1HLjsgn76ImBC1fjRdxrpSPG0CD0kCNuZEC9KiMvPrsfecAzaRq9-UsqSv4JtYhpc3JE3yWENmEa6biT3LfZNAT-_RxJlV7Z2u58IWVoy79g2_pD_VLzTFCzqShRCDgICFw5UaS-8q-KkrA0LLiqcFYURtHfSvxc7tqA8XgOkO24mohNAPN-fI4y8f14Q",
            "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsyMDQ4IiwidHlwIjoiSldUIn0.eyJwYWQiOiJ4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4Iiwic3ViIjoidXNlci0zIn0.D9gwsdIn6JzN9lO9KmtadpjDbEyfVR952FFfWPKGzrSJxqw3ipxeemMOnGhnPnKVTf__QpBt3gOzjcijhj_edZgnl63oLfzEztNloax0jyXJJPa5gxEaLiIKs7trW5oaIk1tomjsWLZxTv98rv0m-S-RxxGCgbTNZgrEyRr5AvUNHojCuqDYq18RYUcWkgNLqZ-8KGR15DIMjktwAkKYbcLQf9HhQMMn-EY2GeOO3_J5yeQN6DQfFEm2VNt6s_gdC8rSarFxRKsCLNP8sSZqo6BMpLo7P_GoIn39ol7p8nt80nnGBW5mQ6nnYv7iXxx3l5_5zv1ox2QZ2Sw1DscXTQ",
        ],
    },
    Vector {
        bits: 3072,
        n: "n0XtsXmGphJWWHM2oG8uiZ9wzC01WNeuWuHASQFfITJ7KhfovZ6naCEkjWe1Hs1jH3dAZh9FA7rM7Q9fDAJFQl-cVIBbWC_mbegHsnCcnOrc8y-eMHAIK6-jfFlx08wb-duGysN82SOgAbKO-eSeEoMH2Q6AwGSqj1Nys8SiNDYeiqIHpPRz6tHpMMqoEYugLwau09GsKTqY9EjqQHKYjrDUMkHT38SCJcY4PfSH1-cwCj8fMm-eZTxUDY0kSD7JQmn2EmZTLtiXJI8H67LnEgzMH7hp4ggVMZIBMtRKFE21H1EAGktQg7gvoKkYynBChTyOtVT1ruI1au2WghHddVSjbvMB02kd3_J0si-9qV-6SgXf3issIE27wuYL0PXnxK34UKcyAoNVtFjNyiZjvSpiIdF2Hfcs3-0QSmqWDAz5iw4EXhQ4ylH9z13V8WzXsypidUk0bV0eY_MrNuSzxXYIdD2kzdGniCz8dX4aa0PJJEUECE05oKi8I0QEYZMT",
        e: "AQAB",
        tokens: &[
            "eyJhbGciOiJSUzI1NiIsImtpZCI6ImszMDcyIiwidHlwIjoiSldUIn0.eyJwYWQiOiIiLCJzdWIiOiJ1c2VyLTAifQ.Z-qG1YJfHjryxeI8LmfXiacRot-ATF1XPBKmiY0_e1fg1t7EKkxtGOBPYFhjhzHJxzI2nVfzpKK8R5gioggkjQycVkutnb8PRQ49ywx4BxS-UxSPUomde88NEAKaJ3Vwuc87DFzsrKsjIVLBTY7Y-GGcc5mvmKRhGHypa_c3ZhRavc3jH7swIsX1ER7051cWmC4tkMwFV-xGf1az9Bdvp3cu6mNgmxY6GcojlYMjv8X7tL-N8O5kNHIqgUAL2oGDHmmrRO6_xqcYBu2cN9iPVn_p6Hve12FKM4enoRF_sNy3VKH4E5aL2Lnkh4MZmjYzLCEEB3aixiJpR5iGebOGEAVySmnMQ8cqlxTahwz6UZIEFt5OpLgmuyWzZMi0V0YmnaE2xj58TF_3507oCnoFbpgjp0fhFS3z9qsYWxSpLfsdYik7xNCHkeRjgtfN-kBkPqBf2m9yktwfln3dZxdfBgQSreximdT8uCvGmrOBh4-rN0Kb0ubFY2CijPcEakwv",
            "eyJhbGciOiJSUzI1NiIsImtpZCI6ImszMDcyIiwidHlwIjoiSldUIn0.eyJwYWQiOiJ4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4Iiwic3ViIjoidXNlci0xIn0.HzdYpP0IUnF2F3Lm3iLIBJ2Dv7EGbs6AqhFyWeyOujOWz8PXGiWM7fHOsGK32k3S1eqw883GcdvCX-UIFfTHfMRvOhxTDV5i-s4jrIJHaCACLRdNnu9KLOpRgcEcbpK5RBFyPTTJwgNi4uXZ62iz0O_hioN05xW9yNFnq2KUfF4bY22iNh9pEUTxHpkdOgejd49_8CPONh7tkIvy6qKj_ih1RejFQiTUVomhYISC0IkByZiUAv9SP2-cySAzPveg4o0MBWSVYmGLzBJRWD4q4Q_yencDfl0TF2WPi0aL7nanYqBQJg8vbXGFYbcHXFYGxMWvOh_dlQJGmWRJL1qcx2VfBlUa_WkH3ysV8C0E9mnhgs6FHrke70wCT8wGeSGoL0Tc0EZr0tb0DSSNvO6VcYochvNjw7FuMeYXwmYuckBUq-zxYDUVk5exVCN52zXR2yb9_dkhqTs9LhsyE5FvqoAjrsHmzGwakjVH0XhfAhSnrEMj-v7IYIOezZJD8cIg",
            "eyJhbGciOiJSUzI1NiIsImtpZCI6ImszMDcyIiwidHlwIjoiSldUIn0.eyJwYWQiOiJ4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHgiLCJzdWIiOiJ1c2VyLTIifQ.R2Ut0He3Km3MGz1e5H4ifyd27Fm48Pa-bBlvhn_29Kfbhl8RnD9R9OMtTF1mY_fBtZgYm7HO9VElz1kCe0e7p79tBkoEV_MxSvbrysDwAZH0u6suBmPzWzKWNC6qOUAZD5LTRUYOkHnD0oRjkuFxfK8i4xu66Aix7aFzMVBO8vil_-PltSJfAV0X8Nh8rItz-p88jCq8gI-SGUz79FbRTu0nDwkisrJRiO-XZ6xoieCdgth2JegfK_H6SUYVxXqIQGQ3nJs6E7sp3tmKNretY5JLwMpzSnFQrlbwnzHwkyaAYCEoHO_x8tvxSiI9dHlkofEnd-k7cXZIzh6hU283ZVLKocJizrcjDGp3KO0BLVXvnowiJUP8HMYNbgqjDwRWxPj4LeKS8jJ6V9i5MqfxYJiK6kgQHXT5yp9SkgFL1mg3wJQpI6Rft0TqR8jQlC3GYrPtJ695hwKGtF8pgDHW7-PXcX0EvtPZhlM1XiOwLr-1fs0zNYU3roVFryO_bhc0",
            "eyJhbGciOiJSUzI1NiIsImtpZCI6ImszMDcyIiwidHlwIjoiSldUIn0.eyJwYWQiOiJ4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4Iiwic3ViIjoidXNlci0zIn0.fcOEDurtSNQsGsgLPEkDYvaT0JrsU9gD_mBDN6GgW5-ime14B1IEpJI-BO4odCIT9YyCRER0tA2q-vXJjr_41Y8-TaCCh9rY5_F3RWND117V65oNsl8JsZz2cjI3a3Q6SfsCJiYnCgqJWKQjc5-pNhqkAll0el7A8tUKE1Z27rgvcJONarl5DiNI_P6gk-ZkWYIxl-75_T4IUvEQxnN_h7aVhO3cA5Im5vpHZsHh6wOSI9v2hpHuq1yPnVvES7BfRVT44pMRyAtQecu9AdNt9A747OXd05ld8XGxnSYRrokoqWcaNykGZJzi6bv5M6KgHdawNg81NCw290WJ1vicSYU6RoaCm7cxHZ9jwws6x8M4QW-ltksyO0jGXywOnUpajzSkYsMLOjVORFgXZn_bOw-1s788TiBzsCHO_9Ij1D_gDrYFzjQdOhJFASgkSNHAfb9-YFtRZX63q4aPqcaO4yHvSCNQ0p0Y8t8lhZpbZg5LbELOrR7b0kt85fKpQujd",
        ],
    },
    Vector {
        bits: 4096,
        n: "w_InK6xdvwEuyllfdKgjA9HT8v6mAXtLjnGKFkvFV2IenXTWU31lgHMQ7xhDzZ3VRkPEH_kk89U3VN_J81vy5a0XU4uxtPIZXmCHxH0SFjHZ2_H5k1P1c5fL4wBusZ_Cv1Bc5dS58qN5XjU5dE1q-dTafM_g7h5prg379BSm6dlUaOcwWOHrplzZJ8qlAfhZer9sm_OPrPQNtQLQi8LFARkPVeWcibn_ky_OSL71eD8WTVgDTnw6towHsqDVPeT3BW_6-c8CtdNCBxLNTXsUrtusZBUUHxGMjf_rs59NHHBZJr4NpOWmVZV3JaXAgDZu5afea8LtDDgLjyj4NaDRFeBbP4KkviHR0l83fdOhi94jxNV-W_1zGgNcPqqbEu2d_zj2XRsjtsnYF6C_DQmkpQKIgA1JGCv6MvU18e75uBO1n3GQr3t2RDjyvYVJ6CbTyJNPCQ8yjJjl2ppT8uobuW_QR3kPkKpuhBUzUHQvAnA_KT9rgWC_Q1fGD8h6i-LB9pmshy2VXiD9xiBbjrbvsTIB5ZvRw5j3MhqOrbTAQUNLY9o_ctRH_AzVf8C9wpH20War2EtnfManYCEIUNSRWEib1n-_hahojAhn_0csa43l1PEP8LAsT1-QhtTEKtpFeCbEQ6Du0ZWhO1Ot7drs4QjWRLqhHEmnwDwZK12zVbc",
        e: "AQAB",
        tokens: &[
            "eyJhbGciOiJSUzI1NiIsImtpZCI6Ims0MDk2IiwidHlwIjoiSldUIn0.eyJwYWQiOiIiLCJzdWIiOiJ1c2VyLTAifQ.AHPKwhP-I0Uapis69jExUrPe_F0JHB4cbnr7VZvMQNx5xUNgVCgW_9mpXZeS8K7la6BXkroxfLDcz-pnTS2b_KpjTSMQlEUD4AWSFJZz4Bp_gdrGYOWWBFy9v8Jcl3G-bifgCI31OEpKjnvvC6a6y8yLR14qp0i4dmZUDn99XE7xFhQqdG_hZ6uROuAItkTJlXnH9ehir5q5wdH_SGTBoKczN0Vi3YA9bKQk-dK1y44a_jBIanYHzvrnQdYbclOQ_8gqSf5blYR38wpxNBabpSFE2M4CxY_pvWfDx5PtH72RryFKAS1_nkNeyXyNMAI-8e0WnVcYL46_BzYwG0Gz5Z2F1jRwf1ZGMzv9tey3i4oPI-cw0KziRZetwB7Q10y3LA1lSW8KCrbdHSxLWlEEiAlO9WFSWVQ8uiiu86iY-vpm8miz_AXEWjRGLjphnccWr6CmWexCbT0lyVo99hQ5MAIbFigQPBM-LkUXR9VD0Dw2IrcmxOfmTy-cEYHYMC1TiF5QE1C6-ap7p_zpsNubd6IVqufNITl62oKDHrNI4kOJ8iaqPYspLerDFxop2cNHdHiv5rXlA_H7P2f0dcC3DUMeb_Q_KhbnqFm96uvz0h7D10Q4eQLypWyhLMSxW08weTx_MXu0j1b0P-5Q38zirwLykx2XWIosIWtxUwRe1VM",
            "eyJhbGciOiJSUzI1NiIsImtpZCI6Ims0MDk2IiwidHlwIjoiSldUIn0.eyJwYWQiOiJ4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4Iiwic3ViIjoidXNlci0xIn0.Jp3QeUiS-oY46BvrbFM3Fca8AftMFW_0HTgVp4P6ICn6_P86RtF3EpaTm44po0k1K2PeC0YR_A4E7BnadT6QslmXqJXPDDiWA-9vooz8oThfuE-xZUTB-DdJ8dbkyMxetfXC9XBozvUcyOEceVYlGGAs8QhDy4p7F6YYrZk8gFzZroSnM3vwZi4E81uj4Vu-ZWKq1Qu3igw6j_XrnNaqULcnGhIGkzPzGUkMtjMOnXpr03hqBHCCGji_s6xhftI7s-bmeGkku1Vp4Zcc_wi3y0XUMVYN-tpfeWE9J08YbEElyiemd_cCxyFv4EMKdZVHig22tqPqXZMpELE4V7SL3kEawwKlfjHAUXBtHQKA2z6YeemahwzI8azpXGRGYqRvQ7bYldPntO4lTVpTDe_aby4GnHcJJ2_IFdhi_xtIaQE6PuJ1VHctnAjQ4f7a1HJIHxYyS88ieFRZct7t2XJDPFi5D17mKoISy7xRQNtBzABUGJZyCg93WONwlhVQpsV0RVAA05vwGF2rjRWHJzc1Pl51raDntAbXd1pGOeVXM7kAwbLgQEfQkxCDeW-z3sXwYApw7TMlvl7uHG-71gPRNKN5NXvqommAtF-MiA4VZOIOz_-cmbyx_hHzyOmx6OPW3Qx-N1fIQ9do3YalG8exO9hl7QqjM9LEsikWT1Ubb_8",
            "eyJhbGciOiJSUzI1NiIsImtpZCI6Ims0MDk2IiwidHlwIjoiSldUIn0.eyJwYWQiOiJ4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHgiLCJzdWIiOiJ1c2VyLTIifQ.hAdk12KoH-TGBIkY6OC0kiwFdBBrlsarGQ7LTSq8Lb4ZFaYZ_KgAT_uv8196PsRyQJO3s_IU6CBPfz_W8hlkagUHelSiCDKoUY01naDKSAglDZRg-E0Bkq6hIqlnbK1qGF-hPOzaMyRGvOoiVapBlMHrrs9HHjwSZEmBU3foFYHV-dnVRO5fdsrMKc6W_vAgbSKblonF2VEVUaeN95ILDq8kp_M4n9yU0aZWBp5Mmx-Ik-h9CQSshZxPUHRM3tyJb856fGjPRqniG_p-a5IeW9SvmnZ4a05ZQGK05Kf_e3QJxgXuBvlmVx0lcM-R1CtVkPGmjcnnH3KuLgLt-IDaaFH_J7eBSbiTVlI3HL3WPa5CG6txa3oB7qOxJaP4KAVmybISkORECGKQEAyucoZbjCk1XDoOpC6H8sMkgULfvz01-IaudpC_JhV6Osjxa7_lgbRUrwLwf1hkThAsxYD5ORmYQNJtOk7PQCnNSHaXUYpSn9iLtD91hFWJ7r2drA8p8C62lyHO6YdSCfeVJWRFICtzwGBtqfdSv1z3xnFDREuKFRTXPVkke1koyA3FJ72rMOx7jI_JLBRQrq3UFHI2kG_rNAZi69j71JnkllyxsiJy9-6xLlq5JhYYm5SvZXBdxXfTYSxfTVPdhB4J0rrYN6BPIRgMXCLJCcOyex3QER8",
            "eyJhbGciOiJSUzI1NiIsImtpZCI6Ims0MDk2IiwidHlwIjoiSldUIn0.eyJwYWQiOiJ4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4Iiwic3ViIjoidXNlci0zIn0.rOBL3kyAxOABzzsoD5Xa0biZAPCkDcrx6avHUrn2f6x8fcNOwydBKUgpjIWc5Er69NSWInKvYv3k3RGg5kN8jzuFaTrFvUWNgXvK9rrNgYsEFNv9R-sc9rcfGYdfZnRaEfmt1Zm_3bVliWN8NQG0aL7UN_Lmkb_205JqdoQw7O5uhCg5LzeQ4lLxbk4p9Zw3IKOI5ucdy6c0fYjUFxPBsYPZ8373h7t8TPBxWLuQ-jubGxTC6fbLZ2xcd5yjzia43c4XaWpMQyztdQbdFXzTvqxXijlr1wptX2apK5STDDy-Z0YzxlKTHrrlcnHnTs89GzrepZopUpA2MiqrE6-3NkfG2CBVibUO8FCwMdv-ibdAb9vbk6uT_qGMYfPa5eqUhw2Eb10oJ-x0IjQpF2XCw5RgkIkEVqfloNWUxUiGkVyDefRy53ZYAqx4SeEnzH_PR90wHN28iwo68UthfCSWB3xQdZKILWel1DIHnL353O6VE9uOQk_W59aBF_sd9DF7iRwKyBorwvTEkiKbYCz-reo1moe_wIJ-s3BxllAACCSVjjK5Dvr8S8iOvS0NARq8uRMM596iprgJRwzPG6wOmGnRHYEonuqmktHt-Lp2u_x0VBKYwzdK-yFJRLWXR-WhUBTUEoo0rpncUnItwntmeSGv2-rhDdtq5HxGVXLmlB4",
        ],
    },
];

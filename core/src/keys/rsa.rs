//! Verify-only RSA for RS256 (RSASSA-PKCS1-v1_5 with SHA-256).
//!
//! Why not the `rsa` crate behind `jwt-simple`: its 64-bit limbs need u64×u64→u128 products,
//! which wasm32 emulates, so one 2048-bit verification costs over a millisecond inside Envoy's V8.
//! Here limbs are 32 bits with u64 products (one native `i64.mul`), the modulus is prepared once
//! per key (Montgomery constants), and only the public operation exists. Everything it handles
//! is public (key, signature, message), so nothing needs to be constant time; it must only be
//! exactly right and never panic.

use std::cmp::Ordering;
use std::fmt;

use sha2::{Digest, Sha256};

/// Smallest modulus accepted: shorter RSA keys are breakable or close to it.
const MIN_BITS: usize = 2048;
/// Largest modulus accepted: bounds the work an attacker-chosen JWKS key can cost per token.
const MAX_BITS: usize = 8192;

/// DER of `DigestInfo { AlgorithmIdentifier { sha256, NULL }, OCTET STRING (32 bytes) }` before
/// the hash (RFC 8017 §9.2, note 1). Only this exact form is accepted.
const SHA256_DIGEST_INFO: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

/// An RSA public key prepared for fast PKCS#1 v1.5 verification (Montgomery form precomputed).
#[derive(Debug, Clone)]
pub struct RsaVerifier {
    modulus: Modulus,
    e: u32,
    bits: usize,
    /// Length of the modulus in bytes: the only signature length accepted.
    k: usize,
}

impl RsaVerifier {
    /// `n` and `e` as big-endian unsigned bytes (JWK `n`/`e` after base64url decoding; leading
    /// zero bytes allowed). Refuses moduli that are even or outside 2048..=8192 bits, and
    /// exponents that are even, 1, or longer than 32 bits.
    pub fn from_components(n: &[u8], e: &[u8]) -> Result<RsaVerifier, String> {
        let n = trim_leading_zeros(n);
        let bits = bit_length(n);
        if bits < MIN_BITS {
            return Err(format!(
                "RSA modulus has {bits} bits, fewer than the minimum {MIN_BITS}"
            ));
        }
        if bits > MAX_BITS {
            return Err(format!(
                "RSA modulus has {bits} bits, more than the maximum {MAX_BITS}"
            ));
        }
        if n.last().is_none_or(|&low| low & 1 == 0) {
            return Err("RSA modulus is even".to_string());
        }
        let e = trim_leading_zeros(e);
        if e.len() > 4 {
            return Err("RSA public exponent is longer than 32 bits".to_string());
        }
        let e = e.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b));
        if e & 1 == 0 {
            return Err("RSA public exponent is even".to_string());
        }
        if e == 1 {
            return Err("RSA public exponent is 1".to_string());
        }
        let modulus = Modulus::new(limbs_from_be(n, n.len().div_ceil(4)))
            .ok_or_else(|| "RSA modulus is not usable".to_string())?;
        Ok(RsaVerifier {
            modulus,
            e,
            bits,
            k: n.len(),
        })
    }

    /// Size of the modulus in bits.
    pub fn bits(&self) -> usize {
        self.bits
    }

    /// RSASSA-PKCS1-v1_5 with SHA-256 (RS256): true iff `signature` is a valid signature of
    /// `message`. RFC 8017 §8.2.2, comparing against an encoding built here rather than parsing
    /// the recovered one, so no lenient parse can let a forgery through.
    pub fn verify_sha256(&self, message: &[u8], signature: &[u8]) -> bool {
        if signature.len() != self.k {
            return false;
        }
        let limbs = self.modulus.n.len();
        let s = limbs_from_be(signature, limbs);
        if cmp_limbs(&s, &self.modulus.n) != Ordering::Less {
            return false;
        }
        let m = self.modulus.pow(&s, self.e);
        let expected = limbs_from_be(&self.encode_sha256(message), limbs);
        m == expected
    }

    /// EMSA-PKCS1-v1_5 encoding of `message` in `k` bytes:
    /// `00 01 FF..FF 00 || DigestInfo(SHA-256) || H`.
    fn encode_sha256(&self, message: &[u8]) -> Vec<u8> {
        let hash = Sha256::digest(message);
        // k >= 256 (at least 2048 bits), so the padding is far longer than the 8 bytes required.
        let padding = self
            .k
            .saturating_sub(3 + SHA256_DIGEST_INFO.len() + hash.len());
        let mut em = Vec::with_capacity(self.k);
        em.extend_from_slice(&[0x00, 0x01]);
        em.resize(2 + padding, 0xff);
        em.push(0x00);
        em.extend_from_slice(&SHA256_DIGEST_INFO);
        em.extend_from_slice(&hash);
        em
    }
}

fn trim_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    bytes.get(first..).unwrap_or_default()
}

/// Bit length of a big-endian number without leading zero bytes.
fn bit_length(bytes: &[u8]) -> usize {
    match bytes.first() {
        None => 0,
        Some(&top) => (bytes.len() - 1) * 8 + (8 - top.leading_zeros() as usize),
    }
}

/// Big-endian bytes to `len` little-endian 32-bit limbs; bytes beyond `4 * len` are dropped
/// (callers pass at most that many).
fn limbs_from_be(bytes: &[u8], len: usize) -> Vec<u32> {
    let mut limbs = vec![0u32; len];
    for (limb, chunk) in limbs.iter_mut().zip(bytes.rchunks(4)) {
        *limb = chunk.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b));
    }
    limbs
}

/// Compares two numbers of the same limb count.
fn cmp_limbs(a: &[u32], b: &[u32]) -> Ordering {
    a.iter()
        .rev()
        .zip(b.iter().rev())
        .map(|(x, y)| x.cmp(y))
        .find(|&o| o != Ordering::Equal)
        .unwrap_or(Ordering::Equal)
}

/// `a -= b` over equal limb counts, returning the borrow out.
fn sub_in_place(a: &mut [u32], b: &[u32]) -> bool {
    let mut borrow = false;
    for (x, &y) in a.iter_mut().zip(b) {
        let (d, b1) = x.overflowing_sub(y);
        let (d, b2) = d.overflowing_sub(u32::from(borrow));
        *x = d;
        borrow = b1 | b2;
    }
    borrow
}

/// An odd modulus `n > 1` with its Montgomery constants, R = 2^(32·limbs).
#[derive(Clone)]
struct Modulus {
    /// Little-endian limbs, top limb non-zero.
    n: Vec<u32>,
    /// -n⁻¹ mod 2³².
    n0inv: u32,
    /// R² mod n: one Montgomery multiplication by it brings a number into Montgomery form.
    rr: Vec<u32>,
}

impl fmt::Debug for Modulus {
    // Not the limbs themselves: a kilobyte of numbers in a log line helps nobody.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Modulus")
            .field("limbs", &self.n.len())
            .finish_non_exhaustive()
    }
}

impl Modulus {
    /// `None` unless `n` is odd, greater than 1 and has a non-zero top limb.
    fn new(n: Vec<u32>) -> Option<Modulus> {
        let &low = n.first()?;
        let &top = n.last()?;
        if low & 1 == 0 || top == 0 || (n.len() == 1 && low == 1) {
            return None;
        }
        // Newton's iteration for n⁻¹ mod 2³²: n·n ≡ 1 (mod 8) for odd n, and each step doubles
        // the correct low bits (3, 6, 12, 24, 48).
        let mut inv = low;
        for _ in 0..4 {
            inv = inv.wrapping_mul(2u32.wrapping_sub(low.wrapping_mul(inv)));
        }
        let mut modulus = Modulus {
            n,
            n0inv: inv.wrapping_neg(),
            rr: Vec::new(),
        };
        modulus.rr = modulus.compute_rr();
        Some(modulus)
    }

    /// R² mod n, as the Montgomery form of 2^(32·limbs): start from R mod n (the Montgomery
    /// form of 1) and run square-and-double over the bits of 32·limbs. A dozen Montgomery
    /// products instead of thousands of modular doublings.
    fn compute_rr(&self) -> Vec<u32> {
        let limbs = self.n.len();
        let total_bits = 32 * limbs;
        let top_bit = total_bits - 1 - self.n.last().map_or(0, |t| t.leading_zeros() as usize);
        // 2^top_bit < n (n is odd, so not a power of two), then double up to 2^total_bits.
        let mut x = vec![0u32; limbs];
        if let Some(limb) = x.get_mut(top_bit / 32) {
            *limb = 1 << (top_bit % 32);
        }
        for _ in top_bit..total_bits {
            self.double_mod(&mut x);
        }
        let mut tmp = vec![0u32; limbs];
        let mut wide = vec![0u64; 2 * limbs];
        for bit in (0..usize::BITS - total_bits.leading_zeros()).rev() {
            self.mont_sqr(&x, &mut tmp, &mut wide);
            std::mem::swap(&mut x, &mut tmp);
            if (total_bits >> bit) & 1 == 1 {
                self.double_mod(&mut x);
            }
        }
        x
    }

    /// `x = 2x mod n` for `x < n`.
    fn double_mod(&self, x: &mut [u32]) {
        let mut carry = 0u32;
        for limb in x.iter_mut() {
            let next = *limb >> 31;
            *limb = (*limb << 1) | carry;
            carry = next;
        }
        if carry != 0 || cmp_limbs(x, &self.n) != Ordering::Less {
            sub_in_place(x, &self.n);
        }
    }

    /// `out = a·b·R⁻¹ mod n` for `a, b < n` (Montgomery product). `a`, `b`, `out` have the
    /// modulus' limb count L; `wide` (scratch) 2L columns.
    fn mont_mul(&self, a: &[u32], b: &[u32], out: &mut [u32], wide: &mut [u64]) {
        let limbs = self.n.len();
        wide.fill(0);
        let mut pairs = a.chunks_exact(2);
        for (pair, i) in (&mut pairs).zip((0..).step_by(2)) {
            if let (Some(columns), &[a0, a1]) = (wide.get_mut(i..=i + limbs + 1), pair) {
                mul_add_columns_2(columns, b, a0, a1);
            }
        }
        // L odd: one row left, columns L-1 ..= 2L-1.
        let last_row = wide.get_mut(limbs.saturating_sub(1)..);
        if let (&[last], Some(columns)) = (pairs.remainder(), last_row) {
            mul_add_columns(columns, b, last);
        }
        self.reduce(wide, out);
    }

    /// `out = a²·R⁻¹ mod n` for `a < n`: each cross product a_i·a_j once, then doubled, so
    /// about a quarter fewer multiplications than [`Self::mont_mul`] (16 of the 18 products of
    /// an e = 65537 verification are squarings).
    fn mont_sqr(&self, a: &[u32], out: &mut [u32], wide: &mut [u64]) {
        let limbs = self.n.len();
        wide.fill(0);
        // Cross products a_i·a_j (j > i) land in columns i+j and i+j+1. Rows i and i+1 go
        // together: a_i·a_{i+1} on its own, then both times a[i+2..] from column 2i+2.
        let mut i = 0;
        while i + 1 < limbs {
            if let (Some(&[a0, a1]), Some(rest)) = (a.get(i..i + 2), a.get(i + 2..)) {
                let product = u64::from(a0) * u64::from(a1);
                if let Some([low, high]) = wide.get_mut(2 * i + 1..2 * i + 3) {
                    *low += product & LOW;
                    *high += product >> 32;
                }
                if let Some(columns) = wide.get_mut(2 * i + 2..=i + limbs + 1) {
                    mul_add_columns_2(columns, rest, a0, a1);
                }
            }
            i += 2;
        }
        // (With L odd, the last row has no cross products.) Double the cross products and add
        // the squares a_i² at column 2i.
        for (pair, &ai) in wide.chunks_exact_mut(2).zip(a) {
            let square = u64::from(ai) * u64::from(ai);
            for (column, half) in pair.iter_mut().zip([square & LOW, square >> 32]) {
                *column = (*column << 1) + half;
            }
        }
        self.reduce(wide, out);
    }

    /// Montgomery reduction: `out = t·R⁻¹ mod n` for `t < n·R` held in `wide` as 2L columns
    /// (clobbered). Row i adds the multiple m_i of n that zeroes column i once the carry from
    /// column i-1 is in; only then is a column's carry needed, so rows carry nothing. Rows go
    /// in pairs: m_{i+1} only depends on the two lowest limbs of m_i·n.
    fn reduce(&self, wide: &mut [u64], out: &mut [u32]) {
        let limbs = self.n.len();
        let n0 = u64::from(self.n.first().copied().unwrap_or(0));
        let n1 = u64::from(self.n.get(1).copied().unwrap_or(0));
        let mut carry = 0u64;
        let mut i = 0;
        while i + 1 < limbs {
            let Some(columns) = wide.get_mut(i..=i + limbs + 1) else {
                break;
            };
            let Some([c0, c1]) = columns.get_mut(..2) else {
                break;
            };
            *c0 += carry;
            let m0 = (*c0 as u32).wrapping_mul(self.n0inv);
            // Column i+1 as row i will leave it, carry from column i included.
            let p0 = u64::from(m0) * n0;
            let p1 = u64::from(m0) * n1;
            let next = *c1 + (p0 >> 32) + (p1 & LOW) + ((*c0 + (p0 & LOW)) >> 32);
            let m1 = (next as u32).wrapping_mul(self.n0inv);
            mul_add_columns_2(columns, &self.n, m0, m1);
            // Columns i and i+1 are now zero in their low 32 bits (with the carry between).
            if let Some(&[c0, c1]) = columns.get(..2) {
                carry = (c1 + (c0 >> 32)) >> 32;
            }
            i += 2;
        }
        if i < limbs {
            // L odd: one last row.
            if let Some(columns) = wide.get_mut(i..=i + limbs) {
                if let Some(first) = columns.first_mut() {
                    *first += carry;
                    let m = (*first as u32).wrapping_mul(self.n0inv);
                    mul_add_columns(columns, &self.n, m);
                    carry = columns.first().map_or(0, |&c| c >> 32);
                }
            }
        }
        // The top L columns, carried into limbs, are the result plus (carry)·R, below 2n.
        for (o, &column) in out.iter_mut().zip(wide.iter().skip(limbs)) {
            let x = column + carry;
            *o = x as u32;
            carry = x >> 32;
        }
        if carry != 0 || cmp_limbs(out, &self.n) != Ordering::Less {
            sub_in_place(out, &self.n);
        }
    }

    /// `s^e mod n` for `s < n`, by left-to-right square-and-multiply (for e = 65537: 16
    /// squarings and one multiplication, plus one product to enter Montgomery form).
    fn pow(&self, s: &[u32], e: u32) -> Vec<u32> {
        let limbs = self.n.len();
        let mut one = vec![0u32; limbs];
        if let Some(low) = one.first_mut() {
            *low = 1;
        }
        let Some(top) = 31u32.checked_sub(e.leading_zeros()) else {
            return one; // s⁰
        };
        let mut wide = vec![0u64; 2 * limbs];
        let mut s_mont = vec![0u32; limbs];
        self.mont_mul(s, &self.rr, &mut s_mont, &mut wide);
        let mut acc = s_mont.clone();
        let mut tmp = vec![0u32; limbs];
        let mut in_montgomery_form = true;
        for bit in (0..top).rev() {
            self.mont_sqr(&acc, &mut tmp, &mut wide);
            std::mem::swap(&mut acc, &mut tmp);
            if (e >> bit) & 1 == 1 {
                if bit == 0 {
                    // Multiplying by plain s also leaves Montgomery form: (xR)·s·R⁻¹ = xs.
                    self.mont_mul(&acc, s, &mut tmp, &mut wide);
                    in_montgomery_form = false;
                } else {
                    self.mont_mul(&acc, &s_mont, &mut tmp, &mut wide);
                }
                std::mem::swap(&mut acc, &mut tmp);
            }
        }
        if in_montgomery_form {
            self.mont_mul(&acc, &one, &mut tmp, &mut wide);
            std::mem::swap(&mut acc, &mut tmp);
        }
        acc
    }
}

/// Low 32 bits of a u64.
const LOW: u64 = 0xffff_ffff;

/// `columns += a·b` with each product split across two columns (low half into column j, high
/// half into column j+1) and no carry between columns: `columns` has one more entry than `b`.
///
/// Why columns: with 32-bit limbs the usual carry (add, then shift) chains each limb to the
/// previous one, and that latency, not the multiplications, bounds the speed. Left in u64
/// columns, carries are settled once per column, in [`Modulus::reduce`]. No column overflows:
/// over one Montgomery product a column takes at most 6L + 2 halves below 2³² (doubled cross
/// products, squares, reduction) plus one carry, under 2⁴⁴ for L = 256 (8192 bits).
///
/// Four limbs per step, written out: fixed-size chunks need no bounds checks at any opt-level.
#[inline]
fn mul_add_columns(columns: &mut [u64], b: &[u32], a: u32) {
    let a = u64::from(a);
    let len = b.len().min(columns.len().saturating_sub(1));
    let Some((columns, last)) = columns.split_at_mut_checked(len) else {
        return;
    };
    let b = b.get(..len).unwrap_or_default();
    let mut high = 0u64;
    let mut step = |column: &mut u64, bj: u32| {
        let product = a * u64::from(bj);
        *column += (product & LOW) + high;
        high = product >> 32;
    };
    zip_unrolled(columns, b, &mut step);
    if let Some(c) = last.first_mut() {
        *c += high;
    }
}

/// Calls `step(column, limb)` for each pair of `columns` and `b`, four at a time: fixed-size
/// chunks let the compiler drop the bounds checks of the innermost loop.
#[inline(always)]
fn zip_unrolled(columns: &mut [u64], b: &[u32], step: &mut impl FnMut(&mut u64, u32)) {
    let mut columns4 = columns.chunks_exact_mut(4);
    let mut b4 = b.chunks_exact(4);
    for (c, x) in (&mut columns4).zip(&mut b4) {
        if let (Ok([c0, c1, c2, c3]), Ok(&[b0, b1, b2, b3])) =
            (<&mut [u64; 4]>::try_from(c), <&[u32; 4]>::try_from(x))
        {
            step(c0, b0);
            step(c1, b1);
            step(c2, b2);
            step(c3, b3);
        }
    }
    for (c, &bj) in columns4.into_remainder().iter_mut().zip(b4.remainder()) {
        step(c, bj);
    }
}

/// [`mul_add_columns`] for two rows at once, the loop nearly all the time is spent in:
/// `columns += a0·b + a1·b·2³²`, with `columns` two longer than `b`. Each limb of `b` and each
/// column is loaded and stored once for two products, a fifth faster under V8.
#[inline]
fn mul_add_columns_2(columns: &mut [u64], b: &[u32], a0: u32, a1: u32) {
    let (a0, a1) = (u64::from(a0), u64::from(a1));
    let len = b.len().min(columns.len().saturating_sub(2));
    let Some((columns, last)) = columns.split_at_mut_checked(len) else {
        return;
    };
    let b = b.get(..len).unwrap_or_default();
    // Column j takes low(a0·b_j), high(a0·b_{j-1}), low(a1·b_{j-1}) and high(a1·b_{j-2}).
    let mut high0 = 0u64;
    let mut prev1 = 0u64;
    let mut high1 = 0u64;
    let mut step = |column: &mut u64, bj: u32| {
        let bj = u64::from(bj);
        let p0 = a0 * bj;
        *column += (p0 & LOW) + high0 + (prev1 & LOW) + high1;
        high0 = p0 >> 32;
        high1 = prev1 >> 32;
        prev1 = a1 * bj;
    };
    zip_unrolled(columns, b, &mut step);
    if let Some([c0, c1]) = last.get_mut(..2) {
        *c0 += high0 + (prev1 & LOW) + high1;
        *c1 += prev1 >> 32;
    }
}

#[cfg(test)]
mod tests;

//! HMAC-SHA256 (RFC 2104) and constant-time comparison, the two primitives the signed cookie
//! values and the state/nonce checks rest on.

use sha2::{Digest, Sha256};

/// SHA-256's block size: HMAC pads (or hashes) the key to exactly this many bytes.
const BLOCK_BYTES: usize = 64;

/// HMAC-SHA256 of `message` under `key` (RFC 2104). Keys longer than a block are hashed first,
/// shorter ones zero-padded, as the RFC says.
pub(crate) fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; BLOCK_BYTES];
    if key.len() > BLOCK_BYTES {
        let digest = Sha256::digest(key);
        for (slot, byte) in block.iter_mut().zip(digest.iter()) {
            *slot = *byte;
        }
    } else {
        for (slot, byte) in block.iter_mut().zip(key.iter()) {
            *slot = *byte;
        }
    }
    let mut inner_pad = [0u8; BLOCK_BYTES];
    let mut outer_pad = [0u8; BLOCK_BYTES];
    for ((k, i), o) in block
        .iter()
        .zip(inner_pad.iter_mut())
        .zip(outer_pad.iter_mut())
    {
        *i = k ^ 0x36;
        *o = k ^ 0x5c;
    }
    let inner = Sha256::new()
        .chain_update(inner_pad)
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(outer_pad)
        .chain_update(inner)
        .finalize()
        .into()
}

/// Compares two byte strings in time that depends only on their lengths, never on where they
/// first differ: an early-exit `==` on a MAC, a state or a nonce would let an attacker who can
/// time the answers guess the secret value byte by byte. Lengths are not secret here (MACs are
/// fixed-size; states and nonces have a fixed encoded length).
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let difference = a
        .iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| std::hint::black_box(acc | (x ^ y)));
    difference == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn hmac_matches_rfc_4231_vectors() {
        // Test case 1: 20-byte key.
        assert_eq!(
            hex(&hmac_sha256(&[0x0b; 20], b"Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        // Test case 2: short key.
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a 131-byte key, longer than a block, is hashed first.
        assert_eq!(
            hex(&hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn hmac_agrees_with_jwt_simple() {
        use jwt_simple::prelude::{HS256Key, MACLike};
        let key = [7u8; 64];
        let ours = hmac_sha256(&key, b"payload");
        let theirs = HS256Key::from_bytes(&key).authentication_tag(b"payload");
        assert_eq!(ours.to_vec(), theirs);
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(!constant_time_eq(b"", b"a"));
    }
}

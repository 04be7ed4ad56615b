//! PKCE (RFC 7636) and the random tokens of the login flow (`state`, `nonce`). The randomness
//! is a parameter: this module never draws it, so it stays pure and testable.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

/// The PKCE `code_verifier` from 32 random bytes: base64url without padding, 43 characters,
/// the shortest length RFC 7636 4.1 allows, carrying the 256 bits of entropy it recommends.
pub fn pkce_verifier(random32: &[u8; 32]) -> String {
    URL_SAFE_NO_PAD.encode(random32)
}

/// The `S256` `code_challenge` of a verifier (RFC 7636 4.2): base64url(SHA-256(ASCII(verifier))).
/// `plain` is never offered: it would send the verifier itself through the browser.
pub fn pkce_challenge_s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A URL-safe random token (`state`, `nonce`): base64url of `random`, unpadded.
///
/// The caller must pass at least 16 bytes from a CSPRNG: the token is all that stands between
/// an attacker and a forged callback (CSRF, RFC 6749 10.12) or a replayed ID token, so it must
/// be unguessable. This function cannot draw more bytes itself and encodes what it is given.
pub fn random_token(random: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(random)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7636 Appendix B: the 32 octets, the verifier they encode to, and its S256 challenge.
    const APPENDIX_B_OCTETS: [u8; 32] = [
        116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186, 22, 212, 37,
        77, 105, 214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121,
    ];
    const APPENDIX_B_VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const APPENDIX_B_CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn verifier_from_appendix_b_octets() {
        let verifier = pkce_verifier(&APPENDIX_B_OCTETS);
        assert_eq!(verifier, APPENDIX_B_VERIFIER);
        assert_eq!(verifier.len(), 43);
    }

    #[test]
    fn challenge_matches_appendix_b() {
        assert_eq!(
            pkce_challenge_s256(APPENDIX_B_VERIFIER),
            APPENDIX_B_CHALLENGE
        );
        // A verifier differing from the appendix's after its 13th character (a common
        // mis-quotation of the vector) does not give the appendix's challenge.
        assert_ne!(
            pkce_challenge_s256("dBjftJeZ4CVP-mJ92VP0GvU4N_5sMTZo69ieWGHEkiM"),
            APPENDIX_B_CHALLENGE
        );
    }

    #[test]
    fn verifier_uses_only_unreserved_characters() {
        for seed in 0..=255u8 {
            let verifier = pkce_verifier(&[seed; 32]);
            assert_eq!(verifier.len(), 43);
            assert!(verifier
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        }
    }

    #[test]
    fn random_token_is_url_safe() {
        let token = random_token(&[
            0xfb, 0xff, 0xfe, 0x00, 0x10, 0x20, 0x30, 0x40, 1, 2, 3, 4, 5, 6, 7, 8,
        ]);
        assert_eq!(token.len(), 22);
        assert!(token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(random_token(&[]), "");
    }
}

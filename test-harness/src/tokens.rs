//! Token minting for tests: raw control over header and claims (hostile tokens included), HS256
//! and RS256 signing, and the JWKS document an IdP would serve.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rsa::pkcs1v15::SigningKey;
use rsa::signature::{SignatureEncoding, Signer};
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use serde_json::{json, Value};
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `base64url(header).base64url(claims)`: the signing input.
pub fn signing_input(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    )
}

/// An HS256 key.
#[derive(Clone)]
pub struct Hs256Key {
    pub secret: Vec<u8>,
}

impl Hs256Key {
    pub fn new(secret: &[u8]) -> Self {
        Self {
            secret: secret.to_vec(),
        }
    }

    /// Signs `claims` with a standard `{"alg":"HS256","typ":"JWT"}` header.
    pub fn mint(&self, claims: &Value) -> String {
        self.mint_with_header(&json!({"alg": "HS256", "typ": "JWT"}), claims)
    }

    /// Signs any header and claims with HMAC-SHA256 (the header is not checked).
    pub fn mint_with_header(&self, header: &Value, claims: &Value) -> String {
        let input = signing_input(header, claims);
        let mac = hmac_sha256::HMAC::mac(input.as_bytes(), &self.secret);
        format!("{input}.{}", b64url(&mac))
    }
}

/// An RSA key pair with a `kid`.
#[derive(Clone)]
pub struct RsaKey {
    pub kid: String,
    pub private: RsaPrivateKey,
}

impl RsaKey {
    pub fn generate(kid: &str, bits: usize) -> Self {
        let private = RsaPrivateKey::new(&mut rand::thread_rng(), bits).expect("RSA keygen");
        Self {
            kid: kid.to_string(),
            private,
        }
    }

    /// Signs `claims` with `{"alg":"RS256","typ":"JWT","kid":...}`.
    pub fn mint(&self, claims: &Value) -> String {
        self.mint_with_header(
            &json!({"alg": "RS256", "typ": "JWT", "kid": self.kid}),
            claims,
        )
    }

    /// Signs any header and claims with RSASSA-PKCS1-v1_5 SHA-256.
    pub fn mint_with_header(&self, header: &Value, claims: &Value) -> String {
        let input = signing_input(header, claims);
        let signer = SigningKey::<sha2::Sha256>::new(self.private.clone());
        let signature = signer.sign(input.as_bytes()).to_vec();
        format!("{input}.{}", b64url(&signature))
    }

    /// The public key as a JWK.
    pub fn jwk(&self) -> Value {
        let public = self.private.to_public_key();
        json!({
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "n": b64url(&public.n().to_bytes_be()),
            "e": b64url(&public.e().to_bytes_be()),
        })
    }
}

/// A JWKS document holding `keys`.
pub fn jwks(keys: &[Value]) -> Value {
    json!({ "keys": keys })
}

/// Standard claims valid for an hour: `iss`, `aud`, `sub`, `iat`, `exp`, and `scope`.
pub fn claims(issuer: &str, audience: &str, sub: &str, scope: &str) -> Value {
    let now = now();
    json!({
        "iss": issuer,
        "aud": audience,
        "sub": sub,
        "iat": now,
        "exp": now + 3600,
        "scope": scope,
    })
}

/// An ES256 (P-256) key pair with a `kid`.
pub struct EcKey {
    pub kid: String,
    pub pair: jwt_simple::prelude::ES256KeyPair,
}

/// An EdDSA (Ed25519) key pair with a `kid`.
pub struct EdKey {
    pub kid: String,
    pub pair: jwt_simple::prelude::Ed25519KeyPair,
}

/// jwt-simple claims carrying exactly `claims` (none of its own iat/exp/nbf).
fn exact_claims(claims: &Value) -> jwt_simple::prelude::JWTClaims<Value> {
    let mut c = jwt_simple::prelude::Claims::with_custom_claims(
        claims.clone(),
        jwt_simple::prelude::Duration::from_secs(0),
    );
    c.issued_at = None;
    c.expires_at = None;
    c.invalid_before = None;
    c
}

impl EcKey {
    pub fn generate(kid: &str) -> Self {
        Self {
            kid: kid.to_string(),
            pair: jwt_simple::prelude::ES256KeyPair::generate(),
        }
    }

    pub fn mint(&self, claims: &Value) -> String {
        use jwt_simple::prelude::ECDSAP256KeyPairLike;
        let pair = jwt_simple::prelude::ES256KeyPair::from_bytes(&self.pair.to_bytes())
            .expect("copy EC key")
            .with_key_id(&self.kid);
        pair.sign(exact_claims(claims)).expect("sign ES256")
    }

    pub fn jwk(&self) -> Value {
        use jwt_simple::prelude::ECDSAP256PublicKeyLike;
        let point = self.pair.public_key().public_key().to_bytes_uncompressed();
        json!({"kty": "EC", "crv": "P-256", "kid": self.kid, "alg": "ES256", "use": "sig",
               "x": b64url(&point[1..33]), "y": b64url(&point[33..65])})
    }
}

impl EdKey {
    pub fn generate(kid: &str) -> Self {
        Self {
            kid: kid.to_string(),
            pair: jwt_simple::prelude::Ed25519KeyPair::generate(),
        }
    }

    pub fn mint(&self, claims: &Value) -> String {
        use jwt_simple::prelude::EdDSAKeyPairLike;
        let pair = self.pair.clone().with_key_id(&self.kid);
        pair.sign(exact_claims(claims)).expect("sign EdDSA")
    }

    pub fn jwk(&self) -> Value {
        json!({"kty": "OKP", "crv": "Ed25519", "kid": self.kid, "alg": "EdDSA",
               "x": b64url(&self.pair.public_key().to_bytes())})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hs256_matches_rfc_7515_style_structure() {
        let key = Hs256Key::new(b"0123456789abcdef0123456789abcdef");
        let token = key.mint(&json!({"sub": "a"}));
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0], b64url(br#"{"alg":"HS256","typ":"JWT"}"#));
        let mac = hmac_sha256::HMAC::mac(
            format!("{}.{}", parts[0], parts[1]).as_bytes(),
            b"0123456789abcdef0123456789abcdef",
        );
        assert_eq!(parts[2], b64url(&mac));
    }

    #[test]
    fn rs256_signature_verifies_with_the_jwk() {
        use rsa::pkcs1v15::{Signature, VerifyingKey};
        use rsa::signature::Verifier;
        let key = RsaKey::generate("k1", 2048);
        let token = key.mint(&json!({"sub": "a"}));
        let (input, sig) = token.rsplit_once('.').unwrap();
        let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
        let verifier = VerifyingKey::<sha2::Sha256>::new(key.private.to_public_key());
        verifier
            .verify(
                input.as_bytes(),
                &Signature::try_from(sig.as_slice()).unwrap(),
            )
            .unwrap();
        assert_eq!(key.jwk()["kid"], "k1");
        assert_eq!(key.jwk()["e"], "AQAB");
    }
}

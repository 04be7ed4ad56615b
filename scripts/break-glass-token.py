#!/usr/bin/env python3
"""Mints a single-use break-glass token for `emergency_access` (stdlib only).

usage: BREAK_GLASS_KEY=... break-glass-token.py WHO [ttl_s]

WHO is who uses it (the token's `sub`, in the audit trail and the warning log line). The token
is an HS256 JWT: iss urn:ai-gateway:emergency, sub, a random jti (admitted once, across all
workers), iat, exp = iat + ttl_s (default 900; the gateway refuses more than
emergency_access.max_ttl_s). Send it as `Authorization: Bearer ...` from an address in
emergency_access.allow_ips; the answer sets a session cookie for the requests that follow.
"""
import base64
import hashlib
import hmac
import json
import os
import secrets
import sys
import time


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        sys.exit(__doc__)
    key = os.environ.get("BREAK_GLASS_KEY", "").encode()
    if len(key) < 32:
        sys.exit("BREAK_GLASS_KEY must be set to the gateway's key (at least 32 bytes)")
    who = sys.argv[1]
    ttl = int(sys.argv[2]) if len(sys.argv) > 2 else 900
    now = int(time.time())
    header = {"alg": "HS256", "typ": "JWT"}
    claims = {"iss": "urn:ai-gateway:emergency", "sub": who, "jti": secrets.token_urlsafe(16),
              "iat": now, "exp": now + ttl}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    print(f"{signing_input}.{b64(signature)}")


if __name__ == "__main__":
    main()

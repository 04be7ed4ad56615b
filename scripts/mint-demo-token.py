#!/usr/bin/env python3
"""Mints an HS256 token for the demo provider of envoy.yaml (stdlib only).

usage: GATEWAY_JWT_SECRET=... mint-demo-token.py [sub] [scope] [ttl_s]
"""
import base64
import hashlib
import hmac
import json
import os
import sys
import time


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def main() -> None:
    secret = os.environ["GATEWAY_JWT_SECRET"].encode()
    sub = sys.argv[1] if len(sys.argv) > 1 else "demo-user"
    scope = sys.argv[2] if len(sys.argv) > 2 else "chat:read chat:write"
    ttl = int(sys.argv[3]) if len(sys.argv) > 3 else 3600
    now = int(time.time())
    header = {"alg": "HS256", "typ": "JWT"}
    claims = {"iss": "https://gateway.demo", "aud": "qwen-web-chat", "sub": sub,
              "scope": scope, "iat": now, "exp": now + ttl}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    print(f"{signing_input}.{b64(signature)}")


if __name__ == "__main__":
    main()

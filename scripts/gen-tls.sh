#!/usr/bin/env bash
# A throwaway TLS setup for the demo's https listener (envoy.yaml `gateway_tls`, 127.0.0.1:8443):
#
#   scripts/gen-tls.sh [DIR]      # DIR defaults to target/demo-tls (under the repo, git-ignored)
#
# writes DIR/ca.pem (a local CA to trust), DIR/server.pem and DIR/server-key.pem (0600): EC P-256,
# valid 30 days, the server certificate for localhost and 127.0.0.1 signed by the CA. Idempotent:
# nothing changes while the files are there, match and stay valid for another day; otherwise all
# three are made anew (trust the new ca.pem then). Needs `openssl` (Debian's; `make setup`).
#
# The CA can do no harm once trusted: its key is deleted right after it signed the server
# certificate (nothing else can ever be issued under it), and its name constraints limit it to
# localhost and 127.0.0.0/8 anyway. Never use these files beyond this machine; production
# certificates come from your CA, to Envoy by SDS (see envoy.yaml).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${1:-$ROOT/target/demo-tls}
DAYS=30
RENEW_BEFORE_S=86400 # a day before expiry, start over

command -v openssl >/dev/null || {
  echo "gen-tls.sh: openssl not found; install Debian's openssl (make setup does)" >&2
  exit 1
}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)

# One run at a time per DIR (make validate and make demo may race).
exec 9>"$DIR/.lock"
if command -v flock >/dev/null; then flock 9; fi

usable() {
  local ca="$DIR/ca.pem" cert="$DIR/server.pem" key="$DIR/server-key.pem"
  [ -s "$ca" ] && [ -s "$cert" ] && [ -s "$key" ] || return 1
  openssl x509 -in "$ca" -noout -checkend "$RENEW_BEFORE_S" >/dev/null 2>&1 || return 1
  openssl x509 -in "$cert" -noout -checkend "$RENEW_BEFORE_S" >/dev/null 2>&1 || return 1
  openssl verify -CAfile "$ca" -purpose sslserver "$cert" >/dev/null 2>&1 || return 1
  # The key is the certificate's.
  [ "$(openssl x509 -in "$cert" -noout -pubkey 2>/dev/null)" = \
    "$(openssl pkey -in "$key" -pubout 2>/dev/null)" ] || return 1
}

if usable; then
  exit 0
fi

work=$(mktemp -d "$DIR/.new.XXXXXX")
trap 'rm -rf "$work"' EXIT
umask 077

cat >"$work/openssl.cnf" <<'CNF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
nameConstraints = critical, permitted;DNS:localhost, permitted;IP:127.0.0.0/255.0.0.0
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
CNF

new_key() {
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
    -pkeyopt ec_param_enc:named_curve -out "$1" 2>/dev/null
}
serial() { echo "0x$(openssl rand -hex 16)"; }

new_key "$work/ca-key.pem"
openssl req -new -x509 -config "$work/openssl.cnf" -extensions ca -sha256 -days "$DAYS" \
  -set_serial "$(serial)" -key "$work/ca-key.pem" \
  -subj "/O=ai-gateway demo/CN=ai-gateway throwaway demo CA $(date -u +%Y-%m-%dT%H:%MZ)" \
  -out "$work/ca.pem"

new_key "$work/server-key.pem"
openssl req -new -config "$work/openssl.cnf" -key "$work/server-key.pem" \
  -subj "/O=ai-gateway demo/CN=localhost" -out "$work/server.csr"
openssl x509 -req -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca-key.pem" \
  -set_serial "$(serial)" -sha256 -days "$DAYS" \
  -extfile "$work/openssl.cnf" -extensions server -out "$work/server.pem" 2>/dev/null
# The CA key has done its only job.
rm -f "$work/ca-key.pem"

chmod 0644 "$work/ca.pem" "$work/server.pem"
chmod 0600 "$work/server-key.pem"
mv -f "$work/server-key.pem" "$DIR/server-key.pem"
mv -f "$work/server.pem" "$DIR/server.pem"
mv -f "$work/ca.pem" "$DIR/ca.pem"
echo "gen-tls.sh: new throwaway CA and certificate for localhost, 127.0.0.1 ($DAYS days):" \
  "$DIR" >&2

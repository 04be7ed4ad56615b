#!/usr/bin/env bash
# Starts the demo: the OpenID Provider (demo users), an Ollama upstream, and Envoy with the repo's
# envoy.yaml and the built filter on 127.0.0.1:8080 and, behind TLS, https://127.0.0.1:8443 (a
# throwaway local CA and certificate from scripts/gen-tls.sh in target/demo-tls/, made when
# missing or expiring). Ctrl-C stops everything this script started (tracked by pid). Run
# through `make demo`, which builds first.
set -euo pipefail
cd "$(dirname "$0")/.."

ENVOY=${ENVOY_BIN:-.venv/bin/envoy}
OLLAMA_URL=${OLLAMA_URL:-http://127.0.0.1:11434}
IDP_PORT=9400
mkdir -p target

# Secrets: from the environment, else fresh for this run (never written to the repo).
new_secret() { python3 -c 'import secrets; print(secrets.token_urlsafe(48))'; }
GATEWAY_JWT_SECRET=${GATEWAY_JWT_SECRET:-$(new_secret)}
OAUTH_CLIENT_SECRET=${OAUTH_CLIENT_SECRET:-$(new_secret)}
SESSION_SECRET=${SESSION_SECRET:-$(new_secret)}
export GATEWAY_JWT_SECRET OAUTH_CLIENT_SECRET SESSION_SECRET

pids=()
cleanup() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  echo "demo stopped"
}
trap cleanup INT TERM EXIT

port_free() {
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
for port in 8080 8443 9901 "$IDP_PORT"; do
  if ! port_free "$port"; then
    echo "port 127.0.0.1:$port is in use: stop what listens there (an earlier demo?)" >&2
    exit 1
  fi
done

# waits until "$1" answers (curl), or the process "$2" exited.
wait_for() {
  for _ in $(seq 1 150); do
    if curl -fsS "$1" >/dev/null 2>&1; then return 0; fi
    if ! kill -0 "$2" 2>/dev/null; then return 1; fi
    sleep 0.1
  done
  return 1
}

# envoy.yaml's https listener reads its certificate from here.
TLS_DIR=target/demo-tls
./scripts/gen-tls.sh "$TLS_DIR"

# The OpenID Provider (npm oidc-provider) with the users of demo/users.json.
IDP_CONFIG=$(node demo/idp-config.mjs "$IDP_PORT") \
  node test-harness/oidc/idp.mjs >/dev/null 2>target/demo-idp.log &
pids+=($!)
if ! wait_for "http://127.0.0.1:$IDP_PORT/.well-known/openid-configuration" "${pids[-1]}"; then
  echo "the OpenID Provider did not start; see target/demo-idp.log" >&2
  tail -n 20 target/demo-idp.log >&2 || true
  exit 1
fi

# The model server: a real Ollama when one answers at OLLAMA_URL, else the harness's stand-in
# (speaks Ollama's API, answers "You said: ..."). envoy.yaml's `ollama` cluster is
# 127.0.0.1:11434; for an Ollama elsewhere, edit that cluster.
if curl -fsS "$OLLAMA_URL/api/tags" >/dev/null 2>&1; then
  UPSTREAM="Ollama at $OLLAMA_URL"
else
  target/release/ollama-standin --port 11434 --model qwen3:8b --delay-ms 30 \
    >/dev/null 2>target/demo-ollama-standin.log &
  pids+=($!)
  UPSTREAM="the Ollama stand-in on http://127.0.0.1:11434 (no Ollama answered at $OLLAMA_URL)"
fi

envoy_args=(-c envoy.yaml --use-dynamic-base-id -l info --log-path target/demo-envoy.log)
DEV=""
if [ "${GATEWAY_DEV_LISTENER:-0}" = 1 ]; then
  envoy_args+=(--config-yaml "$(cat deploy/dev-listener.yaml)")
  DEV="  Debug:    http://127.0.0.1:18789   (NO authentication, straight to the model)"
fi
"$ENVOY" "${envoy_args[@]}" >target/demo-access.log 2>&1 &
pids+=($!)
if ! wait_for http://127.0.0.1:9901/ready "${pids[-1]}"; then
  echo "Envoy did not start; see target/demo-envoy.log" >&2
  tail -n 20 target/demo-envoy.log >&2 || true
  exit 1
fi

TOKEN=$(python3 scripts/mint-demo-token.py demo-user "chat:read chat:write")

cat <<MSG

  AI gateway demo
  ---------------
  Chat page: http://127.0.0.1:8080/chat
  Gateway:   http://127.0.0.1:8080   (Envoy + the filter)
  TLS:       https://127.0.0.1:8443 — trust $TLS_DIR/ca.pem
             (e.g. curl --cacert $TLS_DIR/ca.pem, SSL_CERT_FILE=$TLS_DIR/ca.pem for Python
             clients): a throwaway CA for this machine, 30 days, its key already deleted
  Login:     the demo OpenID Provider on http://127.0.0.1:$IDP_PORT, any password:
               alice  (chat:read chat:write history:team-a history:team-b)
               bob    (chat:read history:team-a: may not chat, the page shows the 403)
  Model:     $UPSTREAM
  Admin:     http://127.0.0.1:9901   (stats: /stats/prometheus)
  Logs:      target/demo-envoy.log, target/demo-access.log (access log with audit records)
$DEV
  API clients use a bearer token. Without one the gateway answers with its JSON error:
    curl -i http://127.0.0.1:8080/v1/models

  With a demo token (HS256, valid for an hour; more with scripts/mint-demo-token.py):
    curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8080/v1/models
    curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8080/v1/chat/completions \\
      -H 'content-type: application/json' \\
      -d '{"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello"}]}'

  Any OpenAI client works (.venv has the official SDK):
    .venv/bin/python -c "from openai import OpenAI; c = OpenAI(base_url='http://127.0.0.1:8080/v1', api_key='$TOKEN'); print(c.chat.completions.create(model='gpt-4o', messages=[{'role': 'user', 'content': 'Hello'}]).choices[0].message.content)"

  Over TLS, the same with the demo CA trusted:
    curl --cacert $TLS_DIR/ca.pem -H "Authorization: Bearer $TOKEN" https://127.0.0.1:8443/v1/models
    SSL_CERT_FILE=$TLS_DIR/ca.pem .venv/bin/python -c "from openai import OpenAI; c = OpenAI(base_url='https://127.0.0.1:8443/v1', api_key='$TOKEN'); print(c.chat.completions.create(model='gpt-4o', messages=[{'role': 'user', 'content': 'Hello'}]).choices[0].message.content)"

  Ctrl-C stops the demo.
MSG
wait -n "${pids[@]}"

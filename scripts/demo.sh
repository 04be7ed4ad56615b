#!/usr/bin/env bash
# Starts the demo: Envoy with the repo's envoy.yaml and the built filter on 127.0.0.1:8080.
# Ctrl-C stops everything this script started (tracked by pid).
set -euo pipefail
cd "$(dirname "$0")/.."

ENVOY=${ENVOY_BIN:-.venv/bin/envoy}
# The demo provider's HS256 secret: from the environment, else fresh for this run.
GATEWAY_JWT_SECRET=${GATEWAY_JWT_SECRET:-$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')}
export GATEWAY_JWT_SECRET
pids=()
cleanup() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  echo "demo stopped"
}
trap cleanup INT TERM EXIT

"$ENVOY" -c envoy.yaml --use-dynamic-base-id -l info --log-path target/demo-envoy.log &
pids+=($!)

for _ in $(seq 1 100); do
  if curl -fsS http://127.0.0.1:9901/ready >/dev/null 2>&1; then break; fi
  if ! kill -0 "${pids[0]}" 2>/dev/null; then
    echo "Envoy exited; see target/demo-envoy.log" >&2
    tail -n 20 target/demo-envoy.log >&2 || true
    exit 1
  fi
  sleep 0.1
done

TOKEN=$(python3 scripts/mint-demo-token.py demo-user "chat:read chat:write")

cat <<MSG

  AI gateway demo
  ---------------
  Gateway:  http://127.0.0.1:8080   (Envoy + the filter; upstream: Ollama at 127.0.0.1:11434)
  Admin:    http://127.0.0.1:9901   (stats, config dump)
  Log:      target/demo-envoy.log

  Every route requires a bearer token. Without one the gateway answers with its JSON error:
    curl -i http://127.0.0.1:8080/api/tags

  With a demo token (HS256, valid for an hour; more with scripts/mint-demo-token.py):
    curl -i -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8080/api/tags

  Ctrl-C stops the demo.
MSG
wait "${pids[0]}"

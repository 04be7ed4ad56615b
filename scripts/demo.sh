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

# The model server: a real Ollama on 127.0.0.1:11434 when one answers, else the harness's
# stand-in (speaks Ollama's API, answers "You said: ...").
if curl -fsS http://127.0.0.1:11434/api/tags >/dev/null 2>&1; then
  UPSTREAM="Ollama at http://127.0.0.1:11434"
else
  target/release/ollama-standin --port 11434 --model qwen3:8b 2>target/demo-ollama-standin.log &
  pids+=($!)
  UPSTREAM="the Ollama stand-in on http://127.0.0.1:11434 (no Ollama answered there)"
fi

"$ENVOY" -c envoy.yaml --use-dynamic-base-id -l info --log-path target/demo-envoy.log &
pids+=($!)

for _ in $(seq 1 100); do
  if curl -fsS http://127.0.0.1:9901/ready >/dev/null 2>&1; then break; fi
  if ! kill -0 "${pids[-1]}" 2>/dev/null; then
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
  Gateway:  http://127.0.0.1:8080   (Envoy + the filter)
  Model:    $UPSTREAM
  Admin:    http://127.0.0.1:9901   (stats, config dump)
  Log:      target/demo-envoy.log

  Every route requires a bearer token. Without one the gateway answers with its JSON error:
    curl -i http://127.0.0.1:8080/api/tags

  With a demo token (HS256, valid for an hour; more with scripts/mint-demo-token.py):
    curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8080/v1/models
    curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8080/v1/chat/completions \\
      -d '{"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello"}]}'

  Any OpenAI client works (.venv has the official SDK):
    .venv/bin/python -c "from openai import OpenAI; c = OpenAI(base_url='http://127.0.0.1:8080/v1', api_key='$TOKEN'); print(c.chat.completions.create(model='gpt-4o', messages=[{'role': 'user', 'content': 'Hello'}]).choices[0].message.content)"

  Ctrl-C stops the demo.
MSG
wait -n "${pids[@]}"

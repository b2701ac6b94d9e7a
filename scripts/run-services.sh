#!/usr/bin/env bash
# Start the five services as separate `nameko run` processes; Ctrl-C stops them all.
set -uo pipefail
cd "$(dirname "$0")/.."
# eventlet announces its own deprecation at every start; nothing to act on here.
export PYTHONWARNINGS=${PYTHONWARNINGS:-ignore::DeprecationWarning}
# A development run: the gateway may sign tokens with its built-in key.
export HUIFANG_ENV=${HUIFANG_ENV:-development}
address=${GATEWAY_ADDRESS:-0.0.0.0:8000}
pids=()
stop() {
  trap - INT TERM
  echo; echo "stopping the services..."
  kill -TERM "${pids[@]}" 2>/dev/null
  wait
  exit 0
}
trap stop INT TERM
for service in intake revisit survey notify gateway; do
  .venv/bin/nameko run --config config.yaml "services.$service.service" &
  pids+=($!)
done
echo "intake, revisit, survey, notify and gateway are running (pids ${pids[*]}); Ctrl-C stops them."
echo "gateway: http://127.0.0.1:${address##*:}/  (API docs: /docs; log in as admin - see the README)"
wait

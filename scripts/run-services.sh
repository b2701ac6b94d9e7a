#!/usr/bin/env bash
# Start the five services as separate `nameko run` processes; Ctrl-C stops them all.
set -uo pipefail
cd "$(dirname "$0")/.."
# eventlet announces its own deprecation at every start; nothing to act on here.
export PYTHONWARNINGS=${PYTHONWARNINGS:-ignore::DeprecationWarning}
# A development run: the gateway may sign tokens with its built-in key, and the first
# start makes `admin` with this documented password (`make demo` logs in with it too).
export HUIFANG_ENV=${HUIFANG_ENV:-development}
DEVELOPMENT_ADMIN_PASSWORD=admin-dev-password
export HUIFANG_ADMIN_PASSWORD=${HUIFANG_ADMIN_PASSWORD:-$DEVELOPMENT_ADMIN_PASSWORD}
address=${GATEWAY_ADDRESS:-0.0.0.0:8000}
# Each service runs in a session (process group) of its own, so a signal for this
# script's group (Ctrl-C, `kill -- -PGID`, make's) never reaches it directly: the
# script alone tells each service, once — nameko fails on a second SIGTERM while it
# stops ("re-send() an already-triggered event") and stays up. Without setsid (macOS),
# job control gives every background job its own process group instead.
if command -v setsid >/dev/null 2>&1; then
  own_session=(setsid)
else
  own_session=(); set -m
fi
pids=()
stop() {
  trap '' INT TERM HUP    # one stop: the signal's copies (group, make, terminal) do nothing
  echo; echo "stopping the services..."
  kill -TERM "${pids[@]}" 2>/dev/null
  wait
  exit 0
}
trap stop INT TERM HUP
for service in intake revisit survey notify gateway; do
  ${own_session[@]+"${own_session[@]}"} \
    .venv/bin/nameko run --config config.yaml "services.$service.service" &
  pids+=($!)
done
echo "intake, revisit, survey, notify and gateway are running (pids ${pids[*]}); Ctrl-C stops them."
echo "gateway: http://127.0.0.1:${address##*:}/  (API docs: /docs)"
echo "a new store's first user: admin, password \$HUIFANG_ADMIN_PASSWORD (development default: $DEVELOPMENT_ADMIN_PASSWORD)"
wait

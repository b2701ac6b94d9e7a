#!/usr/bin/env bash
# Start the four services as separate `nameko run` processes; Ctrl-C stops them all.
set -uo pipefail
cd "$(dirname "$0")/.."
# eventlet announces its own deprecation at every start; nothing to act on here.
export PYTHONWARNINGS=${PYTHONWARNINGS:-ignore::DeprecationWarning}
pids=()
stop() {
  trap - INT TERM
  echo; echo "stopping the services..."
  kill -TERM "${pids[@]}" 2>/dev/null
  wait
  exit 0
}
trap stop INT TERM
for service in intake revisit survey notify; do
  .venv/bin/nameko run --config config.yaml "services.$service.service" &
  pids+=($!)
done
echo "intake, revisit, survey and notify are running (pids ${pids[*]}); Ctrl-C stops them."
wait

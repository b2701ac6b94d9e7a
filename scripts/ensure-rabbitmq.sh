#!/usr/bin/env bash
# Make sure RabbitMQ answers on $RABBIT_HOST:5672; with --management also its
# HTTP API on :15672 (nameko's test fixtures make a vhost per test through it).
set -euo pipefail
host=${RABBIT_HOST:-127.0.0.1}

port_open() { (exec 3<>"/dev/tcp/$host/$1") 2>/dev/null; }
wait_for() {  # what, command...
  local what=$1; shift
  for _ in $(seq 1 90); do "$@" && return 0; sleep 1; done
  echo "RabbitMQ: $what did not come up within 90 s" >&2; return 1
}
api_up() {
  python3 - "$host" <<'PY' 2>/dev/null
import base64, sys, urllib.request
request = urllib.request.Request(f"http://{sys.argv[1]}:15672/api/overview")
request.add_header("Authorization", "Basic " + base64.b64encode(b"guest:guest").decode())
urllib.request.urlopen(request, timeout=5)
PY
}

if ! port_open 5672; then
  if command -v rabbitmq-server >/dev/null 2>&1; then
    echo "RabbitMQ is stopped; starting the local server (rabbitmq-server -detached)"
    rabbitmq-server -detached
    wait_for "the broker on $host:5672" port_open 5672
  else
    cat >&2 <<MSG
RabbitMQ is not running on $host:5672 and is not installed here.
Install it (Debian/Ubuntu: sudo apt-get install rabbitmq-server) or run one in Docker:
  docker run -d --name rabbitmq -p 5672:5672 -p 15672:15672 rabbitmq:3.10-management
MSG
    exit 1
  fi
fi

if [ "${1:-}" = "--management" ] && ! api_up; then
  echo "enabling the RabbitMQ management plugin"
  rabbitmq-plugins enable rabbitmq_management >/dev/null
  wait_for "the management API on $host:15672" api_up
fi

#!/usr/bin/env bash
# The rabbitmq container's entrypoint: RabbitMQ as the image starts it, and beside it
# the passwords of Huifang's users, set from the environment once the node runs.
#
# The users, the vhost `huifang` and each user's permissions come from definitions.json
# (loaded at boot, see huifang.conf). Definitions carry password hashes, not passwords,
# so each user arrives without one; here RABBITMQ_<USER>_PASSWORD becomes its password
# at every start (a changed variable takes effect at the next start). With
# RABBITMQ_ADMIN_PASSWORD set there is also `admin`, an administrator for the management
# UI; without it there is none. guest is deleted. The healthcheck passes only once all
# this is done, so no service starts before its user can log in.
#
#   provision.sh rabbitmq-server     the entrypoint (docker-compose.yml)
#   provision.sh --users-only        the passwords alone, against a running node
set -euo pipefail

USERS=(intake revisit survey notify gateway)
VHOST=huifang
READY=/tmp/huifang-provisioned

password_of() {  # user: its password from RABBITMQ_<USER>_PASSWORD, or fail
  local variable="RABBITMQ_${1^^}_PASSWORD"
  if [ -z "${!variable:-}" ]; then
    echo "provision: $variable is not set" >&2
    return 1
  fi
  printf '%s' "${!variable}"
}

ctl() {  # rabbitmqctl as the broker's own user: run as root, the CLI would make the
         # Erlang cookie itself if the node has not yet, unreadable to the node
  if [ "$(id -u)" = 0 ]; then gosu rabbitmq rabbitmqctl -q "$@"; else rabbitmqctl -q "$@"; fi
}

wait_for_node() {
  until [ -s "${RABBITMQ_DATA_DIR:-/var/lib/rabbitmq}/.erlang.cookie" ]; do sleep 1; done
  # once started, the boot import has made the users
  until ctl await_startup >/dev/null 2>&1; do sleep 2; done
}

set_passwords() {  # every step checked: `set -e` does not reach into an `if`'s function
  local user password
  for user in "${USERS[@]}"; do
    password=$(password_of "$user") || return 1
    ctl change_password "$user" "$password" >/dev/null || return 1
  done
  if [ -n "${RABBITMQ_ADMIN_PASSWORD:-}" ]; then
    { ctl add_user admin "$RABBITMQ_ADMIN_PASSWORD" >/dev/null 2>&1 \
      || ctl change_password admin "$RABBITMQ_ADMIN_PASSWORD" >/dev/null; } || return 1
    ctl set_user_tags admin administrator >/dev/null || return 1
    ctl set_permissions -p "$VHOST" admin '.*' '.*' '.*' >/dev/null || return 1
  else
    ctl delete_user admin >/dev/null 2>&1 || true
  fi
  ctl delete_user guest >/dev/null 2>&1 || true
  echo "provision: passwords set for ${USERS[*]}${RABBITMQ_ADMIN_PASSWORD:+ and admin}; no guest"
}

provision() {
  wait_for_node
  if set_passwords; then
    touch "$READY"
  else
    echo "provision: FAILED - the services cannot log in; fix the environment and restart" >&2
  fi
}

if [ "${1:-}" = "--users-only" ]; then
  set_passwords
  exit
fi
for user in "${USERS[@]}"; do password_of "$user" >/dev/null; done   # fail before starting
rm -f "$READY"                     # a restarted container proves itself again
(provision &)                      # detached: the init process, not the broker, reaps it
exec docker-entrypoint.sh "$@"

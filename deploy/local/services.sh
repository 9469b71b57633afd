#!/usr/bin/env bash
# Makes sure PostgreSQL (127.0.0.1:5432, user postgres, trust auth) and
# RabbitMQ (127.0.0.1:5672, guest/guest) answer: uses running ones, starts
# installed ones, installs them with apt when root and missing.
# Used by `make run`, `make test` and CI.
set -euo pipefail

PGHOST_ADDR=${PGHOST_ADDR:-127.0.0.1}
PGPORT=${PGPORT:-5432}
AMQP_PORT=${AMQP_PORT:-5672}

log() { printf '\033[1;34m[services]\033[0m %s\n' "$*" >&2; }

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

wait_for() { # name host port seconds
  local i
  for ((i = 0; i < $4 * 4; i++)); do
    port_open "$2" "$3" && return 0
    sleep 0.25
  done
  log "$1 did not come up on $2:$3"
  return 1
}

apt_install() {
  if [ "$(id -u)" != 0 ]; then
    log "$* missing and not root: install it, or point DATABASE_URL/AMQP_URL at a running one"
    exit 1
  fi
  log "installing $* with apt"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq "$@" >/dev/null
}

postgres_up() {
  if port_open "$PGHOST_ADDR" "$PGPORT"; then return 0; fi
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    apt_install postgresql postgresql-client
    local version
    version=$(ls /etc/postgresql | sort -V | tail -n1)
    # A development server: local connections need no password.
    sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "/etc/postgresql/$version/main/pg_hba.conf"
  fi
  local version
  version=$(ls /etc/postgresql | sort -V | tail -n1)
  log "starting PostgreSQL $version"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  wait_for PostgreSQL "$PGHOST_ADDR" "$PGPORT" 60
}

rabbitmq_up() {
  if port_open 127.0.0.1 "$AMQP_PORT"; then return 0; fi
  if ! command -v rabbitmq-server >/dev/null 2>&1; then
    apt_install rabbitmq-server
  fi
  log "starting RabbitMQ"
  rabbitmq-server -detached >/dev/null 2>&1 || true
  wait_for RabbitMQ 127.0.0.1 "$AMQP_PORT" 120
}

postgres_up
rabbitmq_up
log "PostgreSQL on $PGHOST_ADDR:$PGPORT and RabbitMQ on 127.0.0.1:$AMQP_PORT are up"

#!/usr/bin/env bash
# PostgreSQL for the local cluster and the tests: Debian's postgresql package (installed on first use), its
# binaries run directly, as the unprivileged `postgres` user when we are root (the server refuses root), on a
# throwaway data directory. The table batch scoring writes to lives here, as a CRM's would.
#
#   postgres.sh start DIR PORT ADDRESSES   initdb DIR/data on first use, then start the server on PORT listening
#                                          on ADDRESSES (comma-separated); idempotent
#   postgres.sh stop DIR                   stop it and delete DIR
#   postgres.sh url DIR PORT HOST          the connection string (postgresql://loopline:<password>@HOST:PORT/loopline)
#   postgres.sh bin                        the directory of the server's binaries (psql, initdb, pg_ctl)
#
# The password is made at the first start and kept in DIR/password (mode 600), never on a command line.
# Durability is off (fsync, synchronous_commit): the data is thrown away with DIR. Clients connect over TCP with
# scram-sha-256, from loopback and from the pod network (198.19.0.0/16).
set -euo pipefail

ROLE=loopline
DATABASE=loopline

log() { printf '[postgres %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

pg_bin() { find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -1; }

ensure_postgres() {
  [[ -n "$(pg_bin)" ]] && return
  log "installing postgresql (Debian)"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) >/dev/null
}

as_server_user() {
  if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

running() { [[ -f "$1/data/postmaster.pid" ]] && kill -0 "$(head -1 "$1/data/postmaster.pid")" 2>/dev/null; }

start() {
  local dir=$1 port=$2 addresses=$3 bin
  ensure_postgres
  bin="$(pg_bin)"
  mkdir -p "$dir"
  chmod 755 "$dir"
  [[ -f "$dir/password" ]] || (umask 077; head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' >"$dir/password")
  if [[ ! -f "$dir/data/PG_VERSION" ]]; then
    mkdir -p "$dir/data" "$dir/run"
    [[ $(id -u) == 0 ]] && chown postgres: "$dir/data" "$dir/run"
    local pwfile
    pwfile="$(mktemp)"
    cat "$dir/password" >"$pwfile"
    [[ $(id -u) == 0 ]] && chown postgres: "$pwfile"
    as_server_user "$bin/initdb" -D "$dir/data" -U "$ROLE" --pwfile="$pwfile" --auth=scram-sha-256 -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 \
      || { rm -f "$pwfile"; log "initdb failed; see $dir/initdb.log"; return 1; }
    rm -f "$pwfile"
    echo "host all all 198.19.0.0/16 scram-sha-256" >>"$dir/data/pg_hba.conf"
  fi
  if ! running "$dir"; then
    # Detached from our stdio, so callers that capture our output are not held open by the server.
    local runner=()
    [[ $(id -u) == 0 ]] && runner=(runuser -u postgres --)
    setsid "${runner[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/run/postgres.log" -w -t 60 \
      -o "-p $port -c listen_addresses='$addresses' -c unix_socket_directories='$dir/run' -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
      start </dev/null >/dev/null 2>&1 || { log "postgres did not start; see $dir/run/postgres.log"; return 1; }
  fi
  PGPASSWORD="$(cat "$dir/password")" "$bin/psql" -h 127.0.0.1 -p "$port" -U "$ROLE" -d postgres -qAtX \
    -c "SELECT 1 FROM pg_database WHERE datname = '$DATABASE'" | grep -q 1 \
    || PGPASSWORD="$(cat "$dir/password")" "$bin/psql" -h 127.0.0.1 -p "$port" -U "$ROLE" -d postgres -qX -c "CREATE DATABASE $DATABASE" >/dev/null
}

stop() {
  local dir=$1
  if running "$dir"; then as_server_user "$(pg_bin)/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null; fi
  rm -rf "$dir"
}

url() { echo "postgresql://$ROLE:$(cat "$1/password")@$3:$2/$DATABASE"; }

case "${1:-}" in
  start) start "$2" "$3" "$4" ;;
  stop) stop "$2" ;;
  url) url "$2" "$3" "$4" ;;
  bin) ensure_postgres; pg_bin ;;
  *) echo "usage: $0 start DIR PORT ADDRESSES | stop DIR | url DIR PORT HOST | bin" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# Sourced by scripts/test.sh: makes sure PostgreSQL and Redis answer for the tests that need them (the
# PostgreSQL runs and the Celery workers), and exports where: IMAGEREC_TEST_POSTGRES_URL, IMAGEREC_TEST_REDIS_URL.
# The machine's own servers (127.0.0.1:5432, database `test`, trust auth; 127.0.0.1:6379) are used when they
# answer; otherwise Debian's packages are installed when missing and private servers are started on
# $IMAGEREC_TEST_PG_PORT / $IMAGEREC_TEST_REDIS_PORT (default 55432 / 56379), with their data under /tmp.
# Each test run then makes its own databases and uses its own Redis db (tests/databases.py, celery_cluster.py).

_services_python=.venv/bin/python
_pg_answers() {  # $1: URL (a SQLAlchemy "+psycopg" one too)
  "$_services_python" -c 'import sys, psycopg; psycopg.connect(sys.argv[1], connect_timeout=3).close()' \
    "${1/+psycopg/}" >/dev/null 2>&1
}
_redis_answers() {  # $1: URL
  "$_services_python" -c 'import sys, redis; redis.Redis.from_url(sys.argv[1], socket_timeout=3).ping()' "$1" \
    >/dev/null 2>&1
}
_as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi; }
_apt_install() {
  _as_root apt-get update -qq && DEBIAN_FRONTEND=noninteractive _as_root apt-get install -y -qq \
    --no-install-recommends "$@" >/dev/null
}

_start_pg() {  # $1: port
  local bin data log
  bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
  if [ -z "$bin" ]; then
    echo "test-services: installing PostgreSQL (Debian package)…"
    _apt_install postgresql || return 1
    bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
  fi
  data="/tmp/imagerec-test-postgres-$1"
  log="$data.log"
  local run=()  # PostgreSQL refuses to run as root
  [ "$(id -u)" = 0 ] && run=(runuser -u postgres --)
  if [ ! -s "$data/PG_VERSION" ]; then
    rm -rf "$data" && mkdir -p "$data" && { [ "$(id -u)" != 0 ] || chown postgres "$data"; }
    "${run[@]}" "$bin/initdb" -D "$data" -U postgres --auth=trust >/dev/null || return 1
  fi
  "${run[@]}" "$bin/pg_ctl" -D "$data" -l "$log" -w -o "-p $1 -k /tmp -c listen_addresses=127.0.0.1" start \
    >/dev/null || return 1
  "${run[@]}" "$bin/createdb" -h 127.0.0.1 -p "$1" -U postgres test 2>/dev/null || true
}

_start_redis() {  # $1: port
  if ! command -v redis-server >/dev/null 2>&1; then
    echo "test-services: installing Redis (Debian package)…"
    _apt_install redis-server || return 1
  fi
  redis-server --port "$1" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
    --logfile "/tmp/imagerec-test-redis-$1.log" >/dev/null
  for _ in $(seq 50); do _redis_answers "redis://127.0.0.1:$1" && return 0; sleep 0.1; done
  return 1
}

_ensure() {  # $1: what, $2: the URL to try first, $3: the private server's port, $4: its URL; prints the URL used
  if "_$1_answers" "$2"; then echo "$2"; return; fi
  "_$1_answers" "$4" || "_start_$1" "$3" >&2 || echo "test-services: could not start $1" >&2
  echo "$4"
}

_pg_port="${IMAGEREC_TEST_PG_PORT:-55432}"
_pg="$(_ensure pg "${IMAGEREC_TEST_POSTGRES_URL:-postgresql://postgres@127.0.0.1:5432/test}" "$_pg_port" \
  "postgresql://postgres@127.0.0.1:$_pg_port/test")"
export IMAGEREC_TEST_POSTGRES_URL="postgresql+psycopg://${_pg#*://}"
_redis_port="${IMAGEREC_TEST_REDIS_PORT:-56379}"
export IMAGEREC_TEST_REDIS_URL="$(_ensure redis "${IMAGEREC_TEST_REDIS_URL:-redis://127.0.0.1:6379}" "$_redis_port" \
  "redis://127.0.0.1:$_redis_port")"

#!/usr/bin/env bash
# Runs every test of the workspace on a fresh machine: makes sure PostgreSQL and NATS are up
# (starting the machine's installed servers if not), installs Debian's Chromium for the chat
# example's browser test if it is missing, installs the pinned npm packages (the compatibility
# tests', and the chat example page's, whose npm client bundle it builds), then runs
# `cargo nextest` over the whole workspace.
#
# Environment: CARGO_TARGET_DIR (default ~/.cache/rivet-engine/target, shared between runs),
# RIVET_TEST_PG_URL (default postgres://postgres@127.0.0.1:5432/test),
# RIVET_TEST_NATS_URL (default nats://127.0.0.1:4222). Extra arguments go to nextest.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/rivet-engine/target}
export RIVET_TEST_PG_URL=${RIVET_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/test}
export RIVET_TEST_NATS_URL=${RIVET_TEST_NATS_URL:-nats://127.0.0.1:4222}

say() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Waits up to $1 seconds for the command in the remaining arguments to succeed.
wait_for() {
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

ensure_postgres() {
  if port_open 5432; then
    say "PostgreSQL is running on 127.0.0.1:5432"
  else
    say "starting PostgreSQL"
    command -v pg_ctlcluster >/dev/null \
      || die "PostgreSQL is not running on 127.0.0.1:5432 and pg_ctlcluster is not installed (apt-get install postgresql)"
    local version
    version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
    [ -n "$version" ] || die "no PostgreSQL cluster under /etc/postgresql"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start \
      || die "could not start PostgreSQL $version (see /var/log/postgresql/)"
    wait_for 30 port_open 5432 || die "PostgreSQL did not start listening on 127.0.0.1:5432 within 30 s"
  fi
  if command -v psql >/dev/null; then
    wait_for 30 psql -h 127.0.0.1 -U postgres -d postgres -c 'select 1' \
      || die "PostgreSQL at 127.0.0.1:5432 refuses user postgres (trust auth expected)"
    if ! psql -h 127.0.0.1 -U postgres -d postgres -tAc "select 1 from pg_database where datname='test'" | grep -q 1; then
      say "creating database test"
      psql -h 127.0.0.1 -U postgres -d postgres -c 'create database test' >/dev/null
    fi
  fi
}

ensure_nats() {
  if port_open 4222; then
    say "NATS is running on 127.0.0.1:4222"
    return
  fi
  say "starting NATS with JetStream"
  [ -x /usr/sbin/nats-server ] || die "NATS is not running on 127.0.0.1:4222 and /usr/sbin/nats-server is not installed (apt-get install nats-server)"
  mkdir -p /var/lib/nats-server
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log \
    || die "could not start nats-server (see /var/log/nats-server.log)"
  wait_for 30 port_open 4222 || die "NATS did not start listening on 127.0.0.1:4222 within 30 s"
}

# `npm ci` in directory $1 unless its node_modules matches its lockfile already.
npm_ci() {
  local stamp=$1/node_modules/.package-lock.json
  if [ ! -f "$stamp" ] || [ "$1/package-lock.json" -nt "$stamp" ]; then
    say "installing pinned npm packages ($1, npm ci)"
    (cd "$1" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
  else
    say "npm packages are installed ($1)"
  fi
}

ensure_npm_packages() {
  command -v npm >/dev/null || die "npm is not installed; the compatibility tests need Node.js 20 and npm"
  npm_ci tests/compat
  local web=examples/chat-room/web
  npm_ci "$web"
  # The page loads npm rivetkit's browser client as one file bundled by esbuild (a build
  # step of our own, so --ignore-scripts above does not skip it).
  local bundle=$web/dist/rivetkit-client.js
  if [ ! -f "$bundle" ] || [ "$web/node_modules/.package-lock.json" -nt "$bundle" ] \
    || [ "$web/client-entry.js" -nt "$bundle" ] || [ "$web/package.json" -nt "$bundle" ]; then
    say "bundling npm rivetkit's browser client for the chat page ($bundle)"
    (cd "$web" && npm run --silent build)
  fi
}

# The chat example's browser test drives Debian's Chromium (/usr/bin/chromium).
ensure_chromium() {
  if [ -x /usr/bin/chromium ]; then
    say "Chromium is installed"
    return
  fi
  say "installing Chromium (apt-get install chromium)"
  local sudo=
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "/usr/bin/chromium is missing and installing it needs root: apt-get install chromium"
    sudo=sudo
  fi
  $sudo apt-get update -qq || die "apt-get update failed; Chromium is needed for the chat example's browser test"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null \
    || die "could not install Chromium (apt-get install chromium)"
  [ -x /usr/bin/chromium ] || die "apt-get installed chromium but /usr/bin/chromium is missing"
}

ensure_nextest() {
  if ! cargo nextest --version >/dev/null 2>&1; then
    say "installing cargo-nextest"
    cargo install cargo-nextest --locked
  fi
}

ensure_postgres
ensure_nats
ensure_chromium
ensure_npm_packages
ensure_nextest

say "running the workspace tests (target dir $CARGO_TARGET_DIR)"
exec cargo nextest run --workspace --no-fail-fast "$@"

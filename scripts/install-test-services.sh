#!/usr/bin/env bash
# Make sure what the integration tests start is installed: a PostgreSQL server (Debian package).
# The tests start and stop their own server on 127.0.0.1; nothing here runs a service.
set -euo pipefail

if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "PostgreSQL server not found and no apt-get: install PostgreSQL (initdb, pg_ctl) yourself" >&2
  exit 1
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "Installing PostgreSQL for the integration tests (apt-get)..."
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends postgresql >/dev/null

#!/usr/bin/env bash
# Make `docker compose config` or `docker-compose config` available: the compose file's test
# validates the file with it (no Docker engine is needed for that).
set -euo pipefail
if docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing docker-compose (Debian's) to check docker-compose.yml" >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose >/dev/null
  exit 0
fi
echo "neither 'docker compose' nor 'docker-compose' is installed: install one to check docker-compose.yml" >&2
exit 1

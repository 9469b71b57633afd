#!/usr/bin/env bash
# The web app's npm packages, exactly as web/package-lock.json pins them:
# `npm ci` when node_modules is missing or the lockfile changed since the
# last install (a copy of it is kept in node_modules), else nothing.
set -euo pipefail
cd "$(dirname "$0")/../../web"
if ! command -v npm >/dev/null; then
  if [ "$(id -u)" != 0 ]; then
    echo "npm is missing and not root: install Node.js (18 or later) and npm" >&2
    exit 1
  fi
  echo "installing nodejs and npm with apt" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq nodejs npm >/dev/null
fi
stamp=node_modules/.aichat-package-lock.json
if [ ! -d node_modules ] || ! cmp -s package-lock.json "$stamp"; then
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json "$stamp"
fi

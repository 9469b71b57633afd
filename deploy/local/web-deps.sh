#!/usr/bin/env bash
# The web app's npm packages, exactly as web/package-lock.json pins them:
# `npm ci` when node_modules is missing or the lockfile changed since the
# last install (a copy of it is kept in node_modules), else nothing.
set -euo pipefail
cd "$(dirname "$0")/../../web"
command -v npm >/dev/null || { echo "npm is missing: install Node.js 20 (apt-get install -y nodejs npm)" >&2; exit 1; }
stamp=node_modules/.aichat-package-lock.json
if [ ! -d node_modules ] || ! cmp -s package-lock.json "$stamp"; then
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json "$stamp"
fi

#!/usr/bin/env bash
# `make openai-sdk`: the OpenAI-compatible /v1 API checked with OpenAI's own
# Python SDK (deploy/local/openai-sdk/check.py, in the venv at $VENV) against
# the whole platform as `make run` starts it, on free ports with fresh
# databases and its own exchange (deploy/local/test-stack.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."

: "${VENV:=/var/tmp/aichat-venv}"
OPENAI_VERSION=3.63.0

log() { printf '\033[1;34m[openai-sdk]\033[0m %s\n' "$*" >&2; }
started=$SECONDS

if ! "$VENV/bin/python" -c "import openai, sys; sys.exit(openai.__version__ != '$OPENAI_VERSION')" 2>/dev/null; then
  log "installing openai $OPENAI_VERSION in $VENV"
  [ -x "$VENV/bin/pip" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "openai==$OPENAI_VERSION"
fi

# shellcheck source=deploy/local/test-stack.sh
source deploy/local/test-stack.sh
export WEB_BUILD=0
test_stack_start openaisdk

API="http://$HTTP_ADDR" BILLING_DB="$PG_URL/openaisdk_billing" "$VENV/bin/python" deploy/local/openai-sdk/check.py

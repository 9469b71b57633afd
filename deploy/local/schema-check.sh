#!/usr/bin/env bash
# `make schema-check`: each diesel schema file matches what its migrations
# create. For identity, chat, billing and analytics (and aichat-messaging's outbox and
# inbox, checked in identity's database), the migrations run on a fresh
# database, `diesel print-schema` prints it with the crate's diesel.toml
# (its filter and its patch file, which holds the Rust names of the seed's
# camelCase columns), and the result must equal the committed file.
#
# After a migration: `diesel print-schema` (without the patch) shows the new
# columns; write them into schema.rs with their Rust names, then
# `deploy/local/schema-check.sh --update` rewrites the patch files from the
# committed schema files (review the patch: it should only rename).
set -euo pipefail
cd "$(dirname "$0")/../.."

: "${PG_URL:=postgres://postgres@127.0.0.1:5432}"
: "${DIESEL:=diesel}"
export PGOPTIONS="${PGOPTIONS:---client-min-messages=warning}"
update=false
[ "${1:-}" = --update ] && update=true

log() { printf '\033[1;32m[schema-check]\033[0m %s\n' "$*" >&2; }

# diesel_cli, pinned; installed into ~/.cargo/bin when missing (about 4 min
# on 2 cores, once per machine). It needs libpq's headers.
DIESEL_VERSION=2.3.4
if [ "$DIESEL" = diesel ] && ! diesel --version 2>/dev/null | grep -q "Version: $DIESEL_VERSION$"; then
  if ! dpkg -s libpq-dev >/dev/null 2>&1; then
    log "installing libpq-dev with apt"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq libpq-dev >/dev/null
  fi
  log "installing diesel_cli $DIESEL_VERSION (once)"
  env -u CARGO_TARGET_DIR cargo install -q diesel_cli --version "$DIESEL_VERSION" \
    --no-default-features --features postgres --locked
  export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
fi

work=$(mktemp -d)
dbs=()
cleanup() {
  for db in "${dbs[@]}"; do psql "$PG_URL/postgres" -qc "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# crate, its schema file, the migrations that create its tables.
checks=(
  "identity crates/identity/src/store/schema.rs identity"
  "chat crates/chat/src/store/schema.rs chat"
  "billing crates/billing/src/store/schema.rs billing"
  "analytics crates/analytics/src/store/schema.rs analytics"
  "messaging crates/messaging/src/schema.rs identity"
)

declare -A migrated=()
status=0
for check in "${checks[@]}"; do
  read -r crate file migrations <<<"$check"
  if [ -z "${migrated[$migrations]:-}" ]; then
    db="schemacheck_${migrations}_$$"
    psql "$PG_URL/postgres" -qc "DROP DATABASE IF EXISTS $db" -qc "CREATE DATABASE $db" >/dev/null
    dbs+=("$db")
    "$DIESEL" migration run --database-url "$PG_URL/$db" --migration-dir "migrations/$migrations" >/dev/null
    migrated[$migrations]=$db
  fi
  url="$PG_URL/${migrated[$migrations]}"
  config="crates/$crate/diesel.toml"
  if $update; then
    # The same settings without the patch: diesel's own output.
    grep -v '^patch_file' "$config" >"$work/$crate.toml"
    (cd "crates/$crate" && "$DIESEL" print-schema --config-file "$work/$crate.toml" --database-url "$url") >"$work/$crate.rs"
    patch_file=$(sed -n 's/^patch_file = "\(.*\)"$/\1/p' "$config")
    diff -u --label original --label modified "$work/$crate.rs" "$file" >"crates/$crate/$patch_file" || true
    log "$crate: wrote crates/$crate/$patch_file"
  fi
  if (cd "crates/$crate" && "$DIESEL" print-schema --config-file diesel.toml --database-url "$url") >"$work/$crate.printed" 2>"$work/$crate.err" \
    && diff -u --label "$file (committed)" --label "$file (from migrations/$migrations)" "$file" "$work/$crate.printed"; then
    log "$crate: $file matches migrations/$migrations"
  else
    cat "$work/$crate.err" >&2
    log "$crate: $file does not match migrations/$migrations (see above)"
    status=1
  fi
done
exit $status

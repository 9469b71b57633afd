#!/usr/bin/env bash
# `make bench-compare REF=<commit>`: an A/B of the chat path in one run.
# Builds REF (a git worktree under /var/tmp/aichat-bench-ref-<sha>/src,
# release, sharing CARGO_TARGET_DIR so the dependencies are built once; its
# binaries copied aside to /var/tmp/aichat-bench-ref-<sha>/bin and reused by
# the next comparison with the same REF unless BENCH_REBUILD_REF=1) and the
# working tree (release), then runs the same chat loads against REF's
# services and then against the tree's, one after the other, each on fresh
# databases and an exchange of its own (deploy/local/bench_lib.sh, as `make
# bench` runs them): `direct` (straight to the mock), `chat` and `openai`
# at each of BENCH_CHAT_CONCURRENCY, with analytics consuming the events.
# Both sides are driven by the tree's loadgen and mock LLM (the same
# instrument). A scenario REF's services cannot serve (an older commit
# without the OpenAI-compatible API) is shown as absent.
#
# Reported, ref / tree / tree÷ref: metered messages/s at the highest
# concurrency; TTFT and total overhead over the direct path at the lowest
# (p50, p99); CPU per metered message per component at the highest
# (cpu_share.py over loadgen's window ÷ messages completed); VmRSS/VmHWM of
# the services after that round; the events' backlog when the load stops
# and the time until the queues are empty. Printed, and written into
# docs/benchmarks.md between the BENCH:compare markers (section "## A/B").
#
# Variables: BENCH_SECONDS (20), BENCH_CHAT_CONCURRENCY ("8 256"),
# BENCH_ROUNDS (1: each side's loads run that many times, in the order ref
# tree, tree ref, ...; each number reported is the median over the rounds),
# BENCH_REBUILD_REF (0), BENCH_DRAIN_SECONDS (300, the longest wait for the
# queues), BENCH_WRITE_DOCS (1), BENCH_REF_PG_URL (PG_URL: where REF's side
# finds PostgreSQL; REF=HEAD with PG_URL over the Unix socket and this over
# TCP compares the two connections on the same code), BENCH_TREE_ENV (extra
# environment of the tree's services only, VAR=value words: REF=HEAD with
# it compares a setting on the same code).
set -euo pipefail
cd "$(dirname "$0")/../.."

REF=${1:-${REF:-}}
if [ -z "$REF" ]; then
  echo "usage: make bench-compare REF=<commit> [BENCH_SECONDS=20] [BENCH_CHAT_CONCURRENCY='8 256'] [BENCH_ROUNDS=1]" >&2
  exit 2
fi
: "${CARGO_TARGET_DIR:=/var/tmp/aichat-target}"
: "${BENCH_SECONDS:=20}"
: "${BENCH_CHAT_CONCURRENCY:=8 256}"
: "${BENCH_REBUILD_REF:=0}"
: "${BENCH_DRAIN_SECONDS:=300}"
: "${BENCH_WRITE_DOCS:=1}"
: "${BENCH_ROUNDS:=1}"
export CARGO_TARGET_DIR

log() { printf '\033[1;36m[bench-compare]\033[0m %s\n' "$*" >&2; }

if ! sha=$(git rev-parse --verify --quiet "$REF^{commit}"); then
  log "REF=$REF is not a commit of this repository"
  exit 2
fi
for c in $BENCH_CHAT_CONCURRENCY; do
  [[ $c =~ ^[1-9][0-9]*$ ]] || { log "BENCH_CHAT_CONCURRENCY: $c is not a concurrency"; exit 2; }
done
[[ $BENCH_SECONDS =~ ^[1-9][0-9]*$ ]] || { log "BENCH_SECONDS: $BENCH_SECONDS is not a number of seconds"; exit 2; }
[[ $BENCH_ROUNDS =~ ^[1-9][0-9]*$ ]] || { log "BENCH_ROUNDS: $BENCH_ROUNDS is not a number of rounds"; exit 2; }
light=$(tr ' ' '\n' <<<"$BENCH_CHAT_CONCURRENCY" | grep . | sort -n | head -n1)
saturation=$(tr ' ' '\n' <<<"$BENCH_CHAT_CONCURRENCY" | grep . | sort -n | tail -n1)

BENCH_DB_PREFIX=aichat_benchcmp_
BENCH_DB=${BENCH_DB_PREFIX}identity
BENCH_CPU_AT=$saturation
BENCH_RSS_AT=$saturation
BENCH_CPU_SCENARIOS="chat openai"
BENCH_CPU_FORMAT=json
BENCH_ALLOW_ABSENT=1
BENCH_EXCHANGE=aichat.benchcmp.ref
# shellcheck source=deploy/local/bench_lib.sh
source deploy/local/bench_lib.sh

services=(identity gateway chat billing analytics)
packages=(aichat-identity aichat-gateway aichat-chat aichat-billing aichat-analytics aichat-loadgen aichat-mockllm)
ref_root=/var/tmp/aichat-bench-ref-$sha
ref_src=$ref_root/src
ref_bin=$ref_root/bin
run_dir=$(mktemp -d /tmp/aichat-bench-compare.XXXXXX)
started=$SECONDS

# Cargo decides a workspace crate is fresh by comparing its source files'
# times with its last build's: REF's checkout and the tree share the
# target dir (and the crates' names and hashes), so whichever was built
# last would pass for the other. Their release artefacts go before each
# build; the dependencies' stay.
clean_workspace_crates() {
  local dir=$1 members
  members=$(cd "$dir" && cargo metadata --no-deps --format-version 1 \
    | python3 -c 'import json, sys; print(" ".join("-p " + p["name"] for p in json.load(sys.stdin)["packages"]))')
  # shellcheck disable=SC2086 # one word per -p and name
  (cd "$dir" && cargo clean -q --release $members)
}

remove_ref_worktree() {
  if [ -e "$ref_src" ]; then
    git worktree remove --force "$ref_src" 2>/dev/null || rm -rf "$ref_src"
  fi
  git worktree prune
}
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  bench_stop
  remove_ref_worktree
  if [ "$status" = 0 ]; then
    rm -rf "$run_dir"
  else
    log "failed; the runs' files are in $run_dir"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

bench_lock

# REF's services, built in a worktree of it.
if [ "$BENCH_REBUILD_REF" != 1 ] && [ -f "$ref_bin/.complete" ]; then
  log "reusing REF's binaries in $ref_bin (BENCH_REBUILD_REF=1 rebuilds them)"
else
  rm -rf "$ref_bin"
  remove_ref_worktree
  mkdir -p "$ref_root"
  git worktree add --detach --quiet "$ref_src" "$sha"
  # Only the packages REF has (an older commit may have no analytics); the
  # same set as the tree's otherwise, so both resolve the same features and
  # share every dependency's build.
  ref_packages=()
  for package in "${packages[@]}"; do
    if grep -qx "name = \"$package\"" "$ref_src"/crates/*/Cargo.toml; then ref_packages+=("$package"); fi
  done
  log "building REF ${sha:0:10} (release, ${ref_packages[*]})"
  build_started=$SECONDS
  clean_workspace_crates "$ref_src"
  bench_build "$ref_src" "${ref_packages[@]}"
  mkdir -p "$ref_bin"
  for package in "${ref_packages[@]}"; do
    name=${package#aichat-}
    if [[ " ${services[*]} " == *" $name "* ]]; then cp "$CARGO_TARGET_DIR/release/$name" "$ref_bin/"; fi
  done
  touch "$ref_bin/.complete"
  log "REF built in $((SECONDS - build_started)) s"
  remove_ref_worktree
fi

# The working tree's services, and the load generator and mock LLM both
# sides use; copied aside so nothing rebuilds them under the run.
log "building the working tree (release)"
build_started=$SECONDS
clean_workspace_crates .
bench_build . "${packages[@]}"
log "the working tree built in $((SECONDS - build_started)) s"
tree_bin=$run_dir/tree-bin
mkdir -p "$tree_bin"
for name in "${services[@]}" loadgen mockllm; do cp "$CARGO_TARGET_DIR/release/$name" "$tree_bin/"; done

# Waits until the consumers' queues of the run are empty (at most
# BENCH_DRAIN_SECONDS); writes each queue's backlog when the load stopped
# (dead-letter queues and the unrouted one included) and the seconds it took
# (null: not within the limit, or rabbitmqctl could not tell).
events_drained() {
  local out=$1 since=$SECONDS depths queue messages backlog=() drained=null
  depths=$(bench_queue_depths)
  while read -r queue messages; do
    [ -z "$queue" ] || backlog+=("\"${queue#"$BENCH_EXCHANGE."}\": $messages")
  done <<<"$depths"
  while [ -n "$depths" ] && ((SECONDS - since < BENCH_DRAIN_SECONDS)); do
    if awk '$1 !~ /\.(dlq|unrouted)$/ && $2 != 0 { busy = 1 } END { exit busy }' <<<"$depths"; then
      drained=$((SECONDS - since))
      break
    fi
    sleep 1
    depths=$(bench_queue_depths)
  done
  local IFS=,
  printf '{"backlog": {%s}, "drain_s": %s}\n' "${backlog[*]}" "$drained" >"$out"
}

tree_pg_url=${PG_URL:-postgres://postgres@127.0.0.1:5432}
ref_pg_url=${BENCH_REF_PG_URL:-$tree_pg_url}

# run_side SIDE BIN DIR: one round of SIDE's loads, its files in $run_dir/DIR.
run_side() {
  local side=$1 bin=$2 dir=$3 side_started=$SECONDS
  PG_URL=$tree_pg_url
  BENCH_SERVICE_ENV=${BENCH_TREE_ENV:-}
  if [ "$side" = ref ]; then
    PG_URL=$ref_pg_url
    BENCH_SERVICE_ENV=
  fi
  BENCH_EXCHANGE=aichat.benchcmp.$side
  BENCH_ANALYTICS=0
  [ ! -x "$bin/analytics" ] || BENCH_ANALYTICS=1
  log "$dir: starting its platform ($bin)"
  bench_start "$bin" "$tree_bin" "$run_dir/$dir"
  bench_chat_loads "$run_dir/$dir"
  log "$dir: waiting for the events' consumers to empty their queues"
  events_drained "$run_dir/$dir/events.json"
  log "$dir: $(cat "$run_dir/$dir/events.json")"
  bench_stop
  log "$dir: done in $((SECONDS - side_started)) s"
}

# Rounds in the order ref tree, tree ref, ref tree, ...: a machine whose
# speed drifts during the run weighs on both sides alike.
for ((round = 1; round <= BENCH_ROUNDS; round++)); do
  suffix=""
  ((round == 1)) || suffix=".$round"
  if ((round % 2)); then
    run_side ref "$ref_bin" "ref$suffix"
    run_side tree "$tree_bin" "tree$suffix"
  else
    run_side tree "$tree_bin" "tree$suffix"
    run_side ref "$ref_bin" "ref$suffix"
  fi
done
# A run the tree cannot do is a failure (REF may lack a scenario; the tree
# must not): the table is printed, not written.
tree_failed=0
if grep -q '"absent"' "$run_dir/tree/chat.jsonl"; then
  tree_failed=1
  BENCH_WRITE_DOCS=0
fi

subject=$(git log -1 --format=%s "$sha")
[ "${#subject}" -le 80 ] || subject="${subject:0:79}…"
head_sha=$(git rev-parse --short=10 HEAD)
tree_label="\`$head_sha\`"
tree_what="the working tree at $head_sha"
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
  tree_label="\`$head_sha\`+changes"
  tree_what="the working tree at $head_sha with uncommitted changes"
fi
table=$(python3 deploy/local/bench_compare.py "$run_dir" --ref-label "\`${sha:0:10}\`" --tree-label "$tree_label" \
  --light "$light" --saturation "$saturation" --db-prefix "$BENCH_DB_PREFIX")
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
pg_note=""
[ "$ref_pg_url" = "$tree_pg_url" ] || pg_note="; PostgreSQL at $ref_pg_url for ref, $tree_pg_url for the tree"
[ -z "${BENCH_TREE_ENV:-}" ] || pg_note="$pg_note; the tree's services with \`$BENCH_TREE_ENV\`"
block=$(cat <<MD
<!-- BENCH:compare:start -->
Measured $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores ($cpu), load average $(cut -d' ' -f1-3 /proc/loadavg) at the end;
\`make bench-compare REF=${sha:0:10}\` with BENCH_SECONDS=$BENCH_SECONDS, BENCH_CHAT_CONCURRENCY="$BENCH_CHAT_CONCURRENCY", BENCH_ROUNDS=$BENCH_ROUNDS (medians over the rounds);
ref: ${sha:0:10} ($subject); tree: $tree_what. Release builds; the tree's loadgen and mock LLM
(50 ms to the first token, then 20 tokens 5 ms apart) on both sides, on the same cores; each side on fresh
databases with analytics consuming the events$pg_note. The whole run took $(((SECONDS - started) / 60)) min $(((SECONDS - started) % 60)) s.

$table
<!-- BENCH:compare:end -->
MD
)
printf '%s\n' "$block"
if [ "$BENCH_WRITE_DOCS" = 1 ]; then
  bench_write_block compare "$block" "$(cat <<'MD'
## A/B

`make bench-compare REF=<commit>` (`deploy/local/bench_compare.sh`) builds the given commit and the working
tree (release) and runs the same chat loads against both, one after the other on this machine, each on
fresh databases: the direct path, the chat API and the OpenAI-compatible API at each of
`BENCH_CHAT_CONCURRENCY` (default `8 256`) for `BENCH_SECONDS` (default 20), with analytics consuming the
events. Throughput at the highest concurrency, the overhead over the direct path at the lowest, CPU per
metered message per component, resident memory and the events' backlog, side by side with the ratio
tree/ref. A run rewrites the block below.

MD
)"
  log "results written to docs/benchmarks.md"
fi
log "took $(((SECONDS - started) / 60)) min $(((SECONDS - started) % 60)) s"
if [ "$tree_failed" = 1 ]; then
  log "the working tree could not do every run (see \"Absent runs\" above): docs/benchmarks.md left as it was"
  exit 1
fi

# Sourced by run.sh and bench_lib.sh: sets PG_URL (unless given) to this
# machine's PostgreSQL over its Unix socket when the server lets us in that
# way (user postgres, trust), else over TCP on 127.0.0.1:5432. A query over
# the socket skips the loopback TCP stack at both ends: less CPU per round
# trip (docs/benchmarks.md, "A/B"). In Kubernetes the database is another
# host and the URL is TCP (k8s/).
if [ -z "${PG_URL:-}" ]; then
  PG_URL=postgres://postgres@127.0.0.1:5432
  pg_socket_url=postgres://postgres@%2Fvar%2Frun%2Fpostgresql
  if [ -S /var/run/postgresql/.s.PGSQL.5432 ] &&
    psql "$pg_socket_url/postgres" -Atqc 'SELECT 1' >/dev/null 2>&1; then
    PG_URL=$pg_socket_url
  fi
  unset pg_socket_url
fi

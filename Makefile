# The verbs of the project. `make run` brings the platform up; `make test`
# runs every check CI runs.
SHELL := /bin/bash
export CARGO_TARGET_DIR ?= /var/tmp/aichat-target
export CARGO_TERM_COLOR ?= never

.PHONY: run test lint fmt services bench bench-compare bench-analytics admin deploy-check schema-check contract web-check web-dev e2e openai-sdk

run: ## Build and start everything on http://127.0.0.1:8080 (Ctrl-C stops it)
	bash deploy/local/run.sh

services: ## Make sure PostgreSQL and RabbitMQ are up (start or install them)
	bash deploy/local/services.sh

lint: ## Formatting and clippy, warnings are errors
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

test: services lint web-check schema-check contract e2e openai-sdk ## Every test: the web app (tsc, ESLint, Vitest, chromium), the schema and HTTP contract checks, unit and integration tests against real PostgreSQL and RabbitMQ
	@log=$$(mktemp); set -o pipefail; \
	cargo test --workspace --locked 2>&1 | tee "$$log"; status=$$?; \
	awk '/^test result:/ { p += $$4; f += $$6 } END { printf "%d passed, %d failed\n", p, f }' "$$log"; \
	rm -f "$$log"; exit $$status

web-check: ## The web app: npm packages from the lockfile, tsc, ESLint, Vitest
	bash deploy/local/web-deps.sh
	cd web && npm run --silent typecheck && npm run --silent lint && npx vitest run --reporter=dot

e2e: services ## The web app in chromium (sign up, mail link, log in, chat, usage, upgrade through a Stripe stand-in) on a fresh stack; screenshots in web/e2e/artifacts
	bash deploy/local/e2e.sh

openai-sdk: services ## The OpenAI-compatible /v1 API through OpenAI's Python SDK (models, whole and streamed completions of each provider family, charged exactly; errors) on a fresh stack
	bash deploy/local/openai-sdk.sh

web-dev: ## The web app with hot reload on http://127.0.0.1:5173, the API proxied to make run's gateway
	bash deploy/local/web-deps.sh
	cd web && npm run dev

schema-check: services ## Each diesel schema.rs equals what its migrations create (diesel print-schema)
	bash deploy/local/schema-check.sh

contract: services ## schemathesis against /openapi.json on a fresh stack, signed in
	bash deploy/local/contract.sh

bench: services ## Load benchmarks through the gateway, then bench-analytics; writes docs/benchmarks.md
	bash deploy/local/bench.sh
	bash deploy/local/bench_analytics.sh

bench-compare: ## A/B of the chat path: make bench-compare REF=<commit> builds REF and the working tree (release), runs the same chat loads against each; writes docs/benchmarks.md
	@test -n "$(REF)" || { echo "usage: make bench-compare REF=<commit> [BENCH_SECONDS=20] [BENCH_CHAT_CONCURRENCY='8 256'] [BENCH_ROUNDS=1]"; exit 2; }
	bash deploy/local/services.sh
	bash deploy/local/bench_compare.sh "$(REF)"

bench-analytics: services ## Analytics at 1 M users / 10 M usage facts: every admin query's p50/p99, ingest events/s; writes docs/benchmarks.md
	bash deploy/local/bench_analytics.sh

admin: ## Make an existing user an admin: make admin EMAIL=someone@example.com
	@test -n "$(EMAIL)" || { echo "usage: make admin EMAIL=someone@example.com"; exit 2; }
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/identity} \
	  cargo run -q -p aichat-identity --bin identity -- make-admin --email "$(EMAIL)"

deploy-check: ## Validate the Dockerfile, compose file and Kubernetes manifests offline
	bash deploy/validate.sh

fmt:
	cargo fmt --all

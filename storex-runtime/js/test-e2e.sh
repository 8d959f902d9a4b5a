#!/usr/bin/env bash
# End-to-end tests of the client: test/integration/ (storex.js over the `ws` package against the
# real example servers) and test/browser/ (the example pages in headless Chromium through
# playwright-core). Both start the binaries built here (target/debug/{counter,todo,chat}) on
# 127.0.0.1 with --port 0; test/support/server.js starts and always kills them.
# Needs only the Rust toolchain, node >= 20 and npm; as root it installs Debian's chromium when
# /usr/bin/chromium is missing (set CHROMIUM=/path to use another build). No browser is downloaded by npm.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi

if [ -z "${CHROMIUM:-}" ] && [ ! -x /usr/bin/chromium ]; then
  echo "== installing Debian's chromium"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium >/dev/null
fi

echo "== building the example servers"
(cd ../.. && cargo build --quiet -p storex-examples --bins)

# One test file at a time (2 cores: a browser per file is enough); a test that hangs fails
# after its timeout instead of stalling the run, and a file whose tests are done exits.
run() { node --test --test-concurrency=1 --test-timeout=60000 --test-force-exit "$@"; }

echo "== js: integration tests (client against the example servers)"
run test/integration/*.test.js

echo "== js: browser tests (example pages in headless Chromium)"
run test/browser/*.test.js

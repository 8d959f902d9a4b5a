#!/usr/bin/env bash
# Tests of the browser client: unit tests (node --test) and the .d.ts check (tsc --noEmit).
# Works from any directory and on a machine with only node (>= 20) and npm.
# The suites beside test/unit/, test/integration/ (the example servers) and test/browser/
# (headless Chromium), need the Rust build: test-e2e.sh runs them.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

# Install the dev dependencies (ws, typescript, esbuild) exactly as locked, unless they already are.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi

echo "== js: unit tests"
node --test test/unit/*.test.js

echo "== js: type check of storex.d.ts (tsc --noEmit on test/types-usage.ts)"
node_modules/.bin/tsc -p tsconfig.json
echo "storex.d.ts: types OK"

#!/usr/bin/env bash
# Tests of the browser client: unit tests (node --test) and the .d.ts check (tsc --noEmit).
# Works from any directory and on a machine with only node (>= 20) and npm.
# Later suites sit beside test/unit/: test/integration/ (a real storex-rs server) and
# test/browser/ (a real browser); they are run by their own scripts, not by this one.
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

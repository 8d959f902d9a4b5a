#!/usr/bin/env bash
# Tests of the browser client: unit tests (node --test), the .d.ts check (tsc --noEmit), and the
# typed example page (examples/pages/todo.ts): its type check, and that todo.js is its build.
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

echo "== js: the typed example page: tsc on examples/pages/todo.ts, and todo.js is its esbuild build"
pages=../../examples/pages
node_modules/.bin/tsc -p "$pages/tsconfig.json"
for page in todo; do
  built=$(node_modules/.bin/esbuild "$pages/$page.ts" --format=esm --target=es2020 --log-level=warning \
    --banner:js="// Built from $page.ts by esbuild (storex-runtime/js/test.sh checks it is current): edit $page.ts.")
  if [ "${STOREX_WRITE_PAGES:-}" = 1 ]; then
    printf '%s\n' "$built" > "$pages/$page.js"
  elif [ "$built" != "$(cat "$pages/$page.js" 2>/dev/null)" ]; then
    echo "examples/pages/$page.js is not the build of $page.ts: write it with STOREX_WRITE_PAGES=1 bash storex-runtime/js/test.sh" >&2
    exit 1
  fi
done
echo "typed pages: types OK, scripts current"

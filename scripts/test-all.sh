#!/usr/bin/env bash
# Runs every check of storex-rs on a fresh machine: formatting, lints, the Rust tests (unit,
# integration, trybuild UI tests, doctests), the JavaScript client's tests and the browser tests.
# It installs what it needs (npm packages; Debian's chromium for the browser tests, redis-server
# for the cluster tests, nginx for the cluster example's test). The tests start their own servers on
# free loopback ports and stop them by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
step() { printf '\n==> %s\n' "$*"; }

step "services the tests start (Debian's packages, installed when missing): redis-server, nginx"
missing=()
[ -x /usr/bin/redis-server ] || missing+=(redis-server)
[ -x /usr/sbin/nginx ] || missing+=(nginx)
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
/usr/bin/redis-server --version
/usr/sbin/nginx -v

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "cargo clippy -p storex-runtime --no-default-features (the core builds without actix)"
cargo clippy -p storex-runtime --no-default-features -- -D warnings

step "cargo clippy -p storex-runtime --no-default-features --features redis (Redis without actix)"
cargo clippy -p storex-runtime --no-default-features --features redis -- -D warnings

step "cargo clippy -p storex-runtime --no-default-features --features metrics (metrics without actix)"
cargo clippy -p storex-runtime --no-default-features --features metrics -- -D warnings

step "cargo doc (warnings are errors: broken links, bad examples)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --all-features --no-deps --quiet

step "cargo test"
# The logs go beside the build (which CARGO_TARGET_DIR may put elsewhere).
mkdir -p target
cargo test --workspace --all-features 2>&1 | tee target/cargo-test.log
rust_passed=$(grep -Eo 'test result: ok\. [0-9]+ passed' target/cargo-test.log | awk '{s+=$4} END {print s+0}')

# node's test runner (TAP when piped) ends each run with "# pass N".
js_passed=0 integration_passed=0 browser_passed=0
if [ -f storex-runtime/js/package.json ]; then
  step "JavaScript client tests"
  bash storex-runtime/js/test.sh 2>&1 | tee target/js-test.log
  js_passed=$(grep -Eo '^# pass [0-9]+' target/js-test.log | awk '{s+=$3} END {print s+0}')

  step "JavaScript end-to-end tests: the client against the example servers, the pages in headless Chromium"
  bash storex-runtime/js/test-e2e.sh 2>&1 | tee target/js-e2e.log
  # test-e2e.sh prints "== js: integration ..." and "== js: browser ..." before each suite.
  count_after() {
    awk -v suite="$1" '/^== js: / { current = ($3 == suite) } current && /^# pass [0-9]+/ { s += $3 } END { print s + 0 }' target/js-e2e.log
  }
  integration_passed=$(count_after integration)
  browser_passed=$(count_after browser)
fi

printf '\nstorex-rs: all checks green in %ss: %s Rust tests, %s JavaScript unit tests, %s integration tests, %s browser tests\n' \
  "$(( $(date +%s) - start ))" "$rust_passed" "$js_passed" "$integration_passed" "$browser_passed"
# The closing line CI reads: every suite above passed (set -e stops at the first failure).
printf 'storex-rs: %s passed, 0 failed\n' "$(( rust_passed + js_passed + integration_passed + browser_passed ))"

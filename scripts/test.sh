#!/usr/bin/env bash
# The README's test command: set up a virtual environment, install with the test extra, lint,
# type-check and run every test (slow end-to-end ones included). Exit 5 (no tests) is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test]"
# The real-stack tests (tests/sandbox/test_stack_puma.py) run Debian's Redis, Puma and Sidekiq.
# As root (CI) missing packages are installed and the tests must run; elsewhere they skip, saying so.
# The Rails stack's (tests/sandbox/test_stack_rails.py) adds Rails, the pg gem, PostgreSQL; wrk is for
# benchmarks/bench_rails.py.
stack_missing() {
  .venv/bin/python -c "from capacity.sandbox.stack import RAILS_PACKAGES as R, missing_packages as m; print(*m(R))"
  command -v wrk >/dev/null || echo wrk
}
# The install (network and disk bound) runs beside the quick tests, none of which needs the packages, and
# is waited for before the real-time tests that do.
install_stack() {
  echo "installing Debian packages for the real-stack tests: $missing"
  if ! { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    redis-server puma ruby-sidekiq ruby-rack ruby-redis ruby-rails ruby-pg postgresql wrk >/dev/null; }; then
    echo "could not install: $(stack_missing | xargs) (the real-stack tests will fail)" >&2
  fi
}
installing=""
missing="$(stack_missing | xargs)"
if [ "$(id -u)" = 0 ]; then
  if [ -n "$missing" ]; then
    install_log="$(mktemp)"
    install_stack >"$install_log" 2>&1 &
    installing=$!
  fi
  export CAPACITY_REQUIRE_STACK=1
elif [ -n "$missing" ]; then
  echo "real-stack tests skip: missing Debian packages $missing (install: sudo apt-get install -y $missing)" >&2
fi
wait_for_install() {
  if [ -n "$installing" ]; then
    wait "$installing" || true
    cat "$install_log"
    rm -f "$install_log"
    installing=""
  fi
}
.venv/bin/python -m ruff check capacity tests benchmarks
.venv/bin/python -m ruff format --check --quiet capacity tests benchmarks
.venv/bin/python -m mypy
# Arguments go to pytest as they are (one run). Without any, the tests that send no real-time load run
# first as two pytest processes side by side (one per core: pytest-xdist's worker threads cannot live
# with gevent's patching), then the ones that do run one at a time (their rates and timings need the
# machine to themselves). Exit 5 (no tests collected) fails either way.
run_pytest() {
  set +e
  .venv/bin/python -m pytest -p no:cacheprovider "$@"
  local rc=$?
  set -e
  if [ "$rc" -eq 5 ]; then echo "pytest collected no tests: failing" >&2; return 1; fi
  return "$rc"
}
if [ "$#" -gt 0 ]; then
  wait_for_install
  run_pytest "$@"
  exit $?
fi
QUICK="not slow or cpu_only"
HALF=(tests/load tests/observe tests/sandbox tests/search tests/soak)  # the other half: everything else
HEAVY=tests/analyze/test_properties.py::test_thorough_step_tests          # evens out the two halves
logs="$(mktemp -d)"
run_pytest -m "$QUICK" "${HALF[@]}" "$HEAVY" >"$logs/a.log" 2>&1 &
a=$!
run_pytest -m "$QUICK" tests "${HALF[@]/#/--ignore=}" --deselect "$HEAVY" >"$logs/b.log" 2>&1 &
b=$!
rc_a=0 rc_b=0
wait "$a" || rc_a=$?
wait "$b" || rc_b=$?
cat "$logs/a.log" "$logs/b.log"
rm -rf "$logs"
wait_for_install
if [ "$rc_a" -ne 0 ] || [ "$rc_b" -ne 0 ]; then echo "quick tests failed" >&2; exit 1; fi
# The real-time tests: those that mostly wait (marker ``waits``: recovery, a replacement, a soak's length, at
# rates well inside the target's capacity) run beside the ones that measure a knee or a capacity, which keep
# a core of their own.
logs="$(mktemp -d)"
run_pytest -m "slow and not cpu_only and waits" >"$logs/waits.log" 2>&1 &
w=$!
rc_m=0 rc_w=0
run_pytest -m "slow and not cpu_only and not waits" || rc_m=$?
wait "$w" || rc_w=$?
echo "--- the real-time tests that wait (run beside the ones above) ---"
cat "$logs/waits.log"
rm -rf "$logs"
if [ "$rc_m" -ne 0 ] || [ "$rc_w" -ne 0 ]; then echo "real-time tests failed" >&2; exit 1; fi

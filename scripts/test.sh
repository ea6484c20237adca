#!/usr/bin/env bash
# The README's test command: set up a virtual environment, install with the test extra, lint,
# type-check and run every test (slow end-to-end ones included). Exit 5 (no tests) is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test]"
.venv/bin/python -m ruff check capacity tests benchmarks
.venv/bin/python -m ruff format --check --quiet capacity tests benchmarks
.venv/bin/python -m mypy
set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi
exit "$rc"

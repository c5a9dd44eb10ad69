#!/usr/bin/env bash
# Fixes what scripts/lint.sh finds and can be fixed mechanically (safe fixes only); running it twice changes
# nothing the second time. What is left is for a person: run scripts/lint.sh after it.
set -euo pipefail
cd "$(dirname "$0")/.."
export DBT_SEND_ANONYMOUS_USAGE_STATS=false
# The dbt templater compiles the models against an empty DuckDB file of its own, never a build of the pipeline
# (so the lint does not depend on what was built: is_incremental() is false, every model compiles in full).
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export LENDSEG_BUILD_PATH="$tmp/lint.duckdb"
bin=.venv/bin
"$bin/ruff" check --fix --exit-zero .
"$bin/ruff" format .
# exit 1: violations left that sqlfluff cannot fix (scripts/lint.sh lists them); anything above is an error
rc=0
"$bin/sqlfluff" fix dbt/ || rc=$?
[ "$rc" -le 1 ]

#!/usr/bin/env bash
# The linters, as CI runs them (.ci/run, before the tests): ruff (rules and format) on every Python file,
# sqlfluff with the dbt templater on the dbt project. Settings: pyproject.toml [tool.ruff], .sqlfluff.
# Fix what they find with scripts/lint_fix.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
export DBT_SEND_ANONYMOUS_USAGE_STATS=false
# The dbt templater compiles the models against an empty DuckDB file of its own, never a build of the pipeline
# (so the lint does not depend on what was built: is_incremental() is false, every model compiles in full).
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export LENDSEG_BUILD_PATH="$tmp/lint.duckdb"
bin=.venv/bin
"$bin/ruff" check .
"$bin/ruff" format --check .
"$bin/sqlfluff" lint dbt/

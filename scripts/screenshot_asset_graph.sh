#!/usr/bin/env bash
# Take a PNG of the Dagster asset graph (global lineage) with headless Chromium. Not run in CI.
#
#   scripts/screenshot_asset_graph.sh [OUT.png] [URL_PATH]
#   scripts/screenshot_asset_graph.sh --docs DIR   # docs' screenshots (scripts/screenshots.cjs: the graph with its
#                                                  # groups, champion_model, the model's checks)
#
# Needs Debian's chromium (`apt-get install -y chromium`) and the project's venv. Starts dagster-webserver
# on a free loopback port against workspace.yaml, waits until the code location has loaded, screenshots
# http://127.0.0.1:PORT${URL_PATH:-/asset-groups} at 1600x1000 and stops the server again.
# Uses $DAGSTER_HOME (default ./.dagster_home, so the graph shows the runs of `lendseg run`) and the
# LENDSEG_* settings of the environment; schedules and sensors are kept off (LENDSEG_AUTOMATION=off).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "--docs" ]]; then DOCS_DIR="$(realpath -m "${2:-docs}")"; set -- ; fi
OUT="$(realpath -m "${1:-asset_graph.png}")"
URL_PATH="${2:-/asset-groups}"
VENV="${VENV:-.venv}"
BROWSER="$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)"
[[ -n "$BROWSER" ]] || { echo "no chromium found: apt-get install -y chromium" >&2; exit 2; }

export DAGSTER_HOME="${DAGSTER_HOME:-$PWD/.dagster_home}"
export LENDSEG_AUTOMATION=off LENDSEG_DEMO="${LENDSEG_DEMO:-1}"
mkdir -p "$DAGSTER_HOME"
"$VENV/bin/python" -m dagster_project.defs.operations.instance >/dev/null

PORT="$("$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
LOG="$(mktemp -t lendseg-webserver.XXXXXX.log)"
setsid "$VENV/bin/dagster-webserver" -h 127.0.0.1 -p "$PORT" -w workspace.yaml >"$LOG" 2>&1 &
SERVER_PID=$!
cleanup() { kill -TERM -- "-$SERVER_PID" 2>/dev/null || true; sleep 2; kill -KILL -- "-$SERVER_PID" 2>/dev/null || true; }
trap cleanup EXIT

echo "waiting for dagster-webserver on 127.0.0.1:$PORT (log: $LOG)" >&2
"$VENV/bin/python" - "$PORT" <<'EOF'
import json, sys, time, urllib.request
url = f"http://127.0.0.1:{sys.argv[1]}/graphql"
query = '{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus locationOrLoadError { __typename } } } } }'
deadline = time.monotonic() + 180
while time.monotonic() < deadline:
    try:
        req = urllib.request.Request(url, json.dumps({"query": query}).encode(), {"Content-Type": "application/json"})
        entries = json.load(urllib.request.urlopen(req, timeout=5))["data"]["workspaceOrError"]["locationEntries"]
        if entries and all(e["loadStatus"] == "LOADED" for e in entries):
            bad = [e["name"] for e in entries if e["locationOrLoadError"]["__typename"] != "RepositoryLocation"]
            if bad:
                sys.exit(f"code location failed to load: {bad}")
            # dismiss the UI's one-time "join the community" dialog (same as clicking Skip), or it covers the shot
            req = urllib.request.Request(url, json.dumps({"query": "mutation { setNuxSeen }"}).encode(),
                                         {"Content-Type": "application/json"})
            urllib.request.urlopen(req, timeout=10).read()
            sys.exit(0)
    except OSError:
        pass
    time.sleep(1)
sys.exit("dagster-webserver did not come up within 180 s")
EOF

if [[ "${DOCS_DIR:-}" != "" ]]; then
  node "$(dirname "$0")/screenshots.cjs" "$PORT" "$DOCS_DIR"
  exit 0
fi

# The UI is a single-page app: give it virtual time to fetch the graph and lay it out before the shot.
"$BROWSER" --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1600,1000 \
  --virtual-time-budget=30000 --screenshot="$OUT" "http://127.0.0.1:$PORT$URL_PATH" 2>/dev/null || true
[[ -s "$OUT" ]] || { echo "no screenshot written; webserver log: $LOG" >&2; exit 1; }
echo "wrote $OUT ($URL_PATH)"

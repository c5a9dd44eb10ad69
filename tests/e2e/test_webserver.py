"""Through the real UI server: `dagster-webserver` + `dagster-daemon` on a loopback port, driven over GraphQL.

The code location from workspace.yaml must load without errors and list every asset, asset check, job,
schedule and sensor; `daily_refresh` launched with the `launchRun` mutation (as the UI's launchpad does)
goes through the run queue (dequeued by the daemon) and publishes a warehouse with `marts.dim_client` rows.
Schedules and sensors stay STOPPED (LENDSEG_AUTOMATION=off), so nothing but the test launches a run.

The server runs on a copy of the session's published workspace (issue 36): the launched run is a daily run after
the first load, not a first load of this module's own.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from conftest import Workspace, copy_workspace

from dagster_project.lib.settings import PROJECT_ROOT

pytestmark = pytest.mark.e2e

REPO_ROOT = PROJECT_ROOT
BIN = Path(sys.executable).parent
LOCATION, REPOSITORY = "lendseg", "__repository__"
SERVER_START_TIMEOUT_S = 180
RUN_TIMEOUT_S = 900

WORKSPACE_QUERY = """
{ workspaceOrError { __typename ... on PythonError { message }
    ... on Workspace { locationEntries { name loadStatus
      locationOrLoadError { __typename ... on PythonError { message stack }
        ... on RepositoryLocation { name repositories { name
          jobs { name }
          schedules { name cronSchedule executionTimezone scheduleState { status } }
          sensors { name sensorState { status } } } } } } } } }
"""

ASSETS_QUERY = """
query Assets($selector: RepositorySelector!) { repositoryOrError(repositorySelector: $selector) {
  __typename ... on PythonError { message }
  ... on Repository { assetNodes { assetKey { path } groupName jobNames
      internalFreshnessPolicy { __typename ... on TimeWindowFreshnessPolicy { failWindowSeconds } }
      assetChecksOrError { __typename ... on AssetChecks { checks { name } } } } } } }
"""

LAUNCH_RUN = """
mutation LaunchRun($executionParams: ExecutionParams!) { launchRun(executionParams: $executionParams) {
  __typename
  ... on LaunchRunSuccess { run { runId status tags { key value } } }
  ... on RunConfigValidationInvalid { errors { message } }
  ... on PythonError { message stack }
  ... on Error { message } } }
"""

RUN_QUERY = """
query Run($runId: ID!) { runOrError(runId: $runId) { __typename
  ... on Run { runId status jobName tags { key value } }
  ... on Error { message } } }
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, ws: Workspace, port: int):
        self.ws, self.port = ws, port
        self.url = f"http://127.0.0.1:{port}/graphql"
        self.procs: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Path] = {}

    def start(self, name: str, argv: list[str]) -> None:
        log = self.ws.root / f"{name}.log"
        env = self.ws.env(LENDSEG_AUTOMATION="off", LENDSEG_DEMO="1", DAGSTER_HOME=str(self.ws.root / "dagster_home"))
        with open(log, "wb") as out:
            self.procs[name] = subprocess.Popen(
                argv,
                cwd=self.ws.root,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.logs[name] = log

    def log_tail(self, n: int = 4000) -> str:
        return "\n".join(
            f"--- {name} ---\n{p.read_text(errors='replace')[-n:]}" for name, p in self.logs.items() if p.exists()
        )

    def gql(self, query: str, variables: dict | None = None, timeout: float = 60) -> dict:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        req = urllib.request.Request(self.url, data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            out = json.loads(resp.read())
        assert "errors" not in out, f"GraphQL errors: {out['errors']}"
        return out["data"]

    def wait_until_up(self) -> None:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while time.monotonic() < deadline:
            for name, p in self.procs.items():
                assert p.poll() is None, f"{name} exited ({p.returncode}):\n{self.log_tail()}"
            try:
                if self.gql("{ version }", timeout=5)["version"]:
                    entries = self.gql(WORKSPACE_QUERY)["workspaceOrError"]["locationEntries"]
                    if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            time.sleep(1)
        raise AssertionError(f"dagster-webserver did not come up in {SERVER_START_TIMEOUT_S} s:\n{self.log_tail()}")

    def stop(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 20
        for p in self.procs.values():
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(p.pid, signal.SIGKILL)  # also code servers / run workers left in the group
            except ProcessLookupError:
                pass
            p.wait(timeout=10)


@pytest.fixture(scope="module")
def server(published_ws: Workspace, tmp_path_factory: pytest.TempPathFactory):
    from dagster_project.defs.operations.instance import ensure_instance

    ws = copy_workspace(published_ws, tmp_path_factory.mktemp("web") / "ws")
    ensure_instance(ws.root / "dagster_home")  # run queue: the daemon dequeues launched runs
    srv = Server(ws, free_port())
    workspace = str(REPO_ROOT / "workspace.yaml")
    try:
        srv.start(
            "webserver", [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(srv.port), "-w", workspace]
        )
        srv.start("daemon", [str(BIN / "dagster-daemon"), "run", "-w", workspace])
        srv.wait_until_up()
        yield srv
    finally:
        srv.stop()


def _repository(srv: Server) -> dict:
    data = srv.gql(WORKSPACE_QUERY)["workspaceOrError"]
    assert data["__typename"] == "Workspace", data
    [entry] = data["locationEntries"]
    loc = entry["locationOrLoadError"]
    assert entry["name"] == LOCATION and entry["loadStatus"] == "LOADED"
    assert loc["__typename"] == "RepositoryLocation", f"code location failed to load: {loc}"
    [repo] = loc["repositories"]
    assert repo["name"] == REPOSITORY
    return repo


def test_code_location_loads_and_lists_everything(server: Server) -> None:
    from dagster_project.definitions import defs

    repo = _repository(server)
    graph = defs.resolve_asset_graph()
    repo_def = defs.get_repository_def()

    jobs = {"daily_refresh", "monthly_retrain", "full_rebuild", "intraday_warnings"}
    assert {j["name"] for j in repo["jobs"]} - {"__ASSET_JOB"} == jobs
    schedules = {s["name"]: s for s in repo["schedules"]}
    assert (
        set(schedules)
        == {s.name for s in repo_def.schedule_defs}
        == {"daily_refresh_schedule", "monthly_retrain_schedule"}
    )
    assert schedules["daily_refresh_schedule"]["executionTimezone"] == "Asia/Shanghai"
    sensors = {s["name"]: s for s in repo["sensors"]}
    assert set(sensors) == {s.name for s in repo_def.sensor_defs} == {"landing_sensor", "pipeline_failure_alert"}
    # LENDSEG_AUTOMATION=off: nothing can fire unless started by hand
    assert {s["scheduleState"]["status"] for s in schedules.values()} == {"STOPPED"}
    assert {s["sensorState"]["status"] for s in sensors.values()} == {"STOPPED"}

    data = server.gql(ASSETS_QUERY, {"selector": {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY}})
    nodes = data["repositoryOrError"]["assetNodes"]
    listed = {dg.AssetKey(n["assetKey"]["path"]) for n in nodes}
    assert listed == set(graph.get_all_asset_keys()) and len(listed) >= 20
    checks = {
        dg.AssetCheckKey(dg.AssetKey(n["assetKey"]["path"]), c["name"])
        for n in nodes
        for c in (n["assetChecksOrError"].get("checks") or [])
    }
    assert checks == set(graph.asset_check_keys) and checks
    groups = {n["groupName"] for n in nodes}
    assert {"ingest", "reference", "staging", "intermediate", "marts", "publish"} <= groups
    for n in nodes:  # every stage runs daily except training, which only monthly_retrain runs
        if n["groupName"] == "ml_training":
            assert "monthly_retrain" in n["jobNames"] and "daily_refresh" not in n["jobNames"], n["assetKey"]
        else:
            assert "daily_refresh" in n["jobNames"], n["assetKey"]
    published = next(n for n in nodes if n["assetKey"]["path"] == ["published_warehouse"])
    assert published["internalFreshnessPolicy"] == {
        "__typename": "TimeWindowFreshnessPolicy",
        "failWindowSeconds": 36 * 3600,
    }


def test_daily_refresh_launched_like_the_ui_publishes_the_warehouse(server: Server) -> None:
    params = {
        "selector": {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY, "jobName": "daily_refresh"},
        "runConfigData": "{}",
        "mode": "default",
        "executionMetadata": {"tags": [{"key": "dagster/from_ui", "value": "true"}]},
    }
    launched = server.gql(LAUNCH_RUN, {"executionParams": params})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]
    tags = {t["key"]: t["value"] for t in launched["run"]["tags"]}
    assert tags.get("lendseg/writer") == "build"  # the run-queue limit applies to it

    deadline = time.monotonic() + RUN_TIMEOUT_S
    seen = []
    while True:
        run = server.gql(RUN_QUERY, {"runId": run_id})["runOrError"]
        assert run["__typename"] == "Run", run
        if not seen or seen[-1] != run["status"]:
            seen.append(run["status"])
        if run["status"] in {"SUCCESS", "FAILURE", "CANCELED"}:
            break
        assert time.monotonic() < deadline, (
            f"run {run_id} still {run['status']} after {RUN_TIMEOUT_S} s:\n{server.log_tail()}"
        )
        time.sleep(2)
    if run["status"] != "SUCCESS":
        instance = dg.DagsterInstance.from_config(str(server.ws.root / "dagster_home"))
        msgs = [e.message for e in instance.all_logs(run_id) if e.dagster_event and e.dagster_event.is_failure]
        instance.dispose()
        pytest.fail(
            f"run {run_id} ended {run['status']} (statuses {seen}):\n"
            + "\n".join(msgs)[-4000:]
            + "\n"
            + server.log_tail()
        )
    assert run["jobName"] == "daily_refresh"

    con = duckdb.connect(str(server.ws.warehouse), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM marts.dim_client").fetchone()[0] > 0
    finally:
        con.close()
    from dagster_project.defs.publish.files import current_version

    published = current_version(server.ws.warehouse, server.ws.warehouse.parent / "published_versions")
    assert published.manifest["run_id"] == run_id and published.number > 1  # a new version, written by this run
    instance = dg.DagsterInstance.from_config(str(server.ws.root / "dagster_home"))
    try:
        latest = instance.get_latest_materialization_event(dg.AssetKey("published_warehouse"))
        assert latest is not None and latest.run_id == run_id  # this file is the one that run published
    finally:
        instance.dispose()

"""The house rules of the layout (README "Architecture"): stage folders, shared plumbing, tools kept out."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "dagster_project"
STAGES = ("ingest", "transform", "segmentation", "applications", "publish", "operations")  # data-flow order
MAX_LINES = 400
# Over MAX_LINES since `ruff format` (issue 37, linters), to split next session; the list only ever shrinks.
# Left whole because other branches edit them this session (tools/bench*, tools/evaluate*, cli.py) or, for
# loading.py, recommend_assets.py and files.py, because the split did not fit in the linters' session.
TOO_LONG_FOR_NOW: set[str] = {
    "cli.py",
    "tools/bench.py",
    "tools/evaluate.py",
    "defs/ingest/loading.py",
    "defs/applications/recommend_assets.py",
    "defs/publish/files.py",
}


def test_stage_folders_exist_and_the_readme_lists_them_in_data_flow_order() -> None:
    assert sorted(p.name for p in (PKG / "defs").iterdir() if p.is_dir() and p.name != "__pycache__") == sorted(STAGES)
    arch = (ROOT / "README.md").read_text(encoding="utf-8").split("## Architecture", 1)[1].split("\n## ", 1)[0]
    positions = [arch.index(f"`defs/{s}/`") for s in STAGES]
    assert positions == sorted(positions)


def test_no_module_is_a_hall() -> None:
    long = {
        str(p.relative_to(PKG)): n
        for p in PKG.rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert set(long) <= TOO_LONG_FOR_NOW, {k: v for k, v in long.items() if k not in TOO_LONG_FOR_NOW}


def test_lendseg_variables_are_read_only_by_the_settings_module() -> None:
    offenders = []
    for p in [*(PKG / "defs").rglob("*.py"), *(PKG / "lib").rglob("*.py")]:
        if p.name == "settings.py":
            continue
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"os\.(environ|getenv)\b.*LENDSEG_", line):
                offenders.append(f"{p.relative_to(ROOT)}:{i}")
    assert not offenders, offenders


def test_the_code_location_imports_no_tool() -> None:
    code = (
        "import sys, dagster_project.definitions; "
        "print(sorted(m for m in sys.modules if m.startswith('dagster_project.tools')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"LENDSEG_DEMO": "1", "PATH": ""},
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"

"""Time publishing a build: the full rewrite of another revision (before issue 35: --rev b211d0b), this revision's
first publish (a complete file), a publish of the unchanged build (an increment rewriting nothing) and, for each
--change TABLE, a publish after one row of that build table was duplicated (an increment rewriting that table).
The build is copied first (the copy is changed, never the original); every publish goes to a scratch folder beside
it. Prints one line per step: seconds, mode, tables rewritten, file MB, and the load average before the step.

usage: python scripts/time_publish.py BUILD.duckdb AUDIT_DIR [--rev REV] [--change SCHEMA.TABLE ...] [--memory 4GB]
"""

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from dagster_project.defs.publish.files import publish


def files_at(rev: str):
    """defs/publish/files.py of git revision ``rev``, imported as a module of its own."""
    root = Path(__file__).resolve().parents[1]
    text = subprocess.run(
        ["git", "-C", str(root), "show", f"{rev}:dagster_project/defs/publish/files.py"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / f"files_{rev}.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def step(label: str, fn) -> None:
    load = os.getloadavg()[0]
    t = time.perf_counter()
    v = fn()
    s = time.perf_counter() - t
    m = v.manifest
    rewritten = m.get("tables_rewritten")
    print(
        f"{label:<34} {s:7.2f} s  {m.get('publish_mode', 'full (old)'):<10} "
        f"rewritten {len(rewritten) if rewritten is not None else 'all':>3} of {len(m['row_counts']) - 2}  "
        f"{v.path.stat().st_size / 1e6:8.1f} MB  load {load:.1f}  {m.get('publish_seconds', '')}  "
        f"{','.join(rewritten or []) if len(rewritten or []) < 5 else ''}",
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("audit")
    ap.add_argument("--rev")
    ap.add_argument("--change", action="append", default=[])
    ap.add_argument("--memory", default="4GB")
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="time-publish-", dir=Path(a.build).parent))
    try:
        build = work / "build.duckdb"
        shutil.copyfile(a.build, build)
        audit = Path(a.audit)
        if a.rev:
            old = files_at(a.rev)
            step(
                f"full rewrite ({a.rev})",
                lambda: old.publish(
                    build, work / "old" / "wh.duckdb", work / "old" / "v", audit, "old", memory_limit=a.memory
                ),
            )
            shutil.rmtree(work / "old")
        out = lambda run: publish(build, work / "wh.duckdb", work / "v", audit, run, memory_limit=a.memory)  # noqa: E731
        step("first publish (this revision)", lambda: out("first"))
        step("unchanged build", lambda: out("unchanged"))
        for table in a.change:
            con = duckdb.connect(str(build))
            con.execute(f"INSERT INTO {table} SELECT * FROM {table} LIMIT 1")
            con.close()
            step(f"one changed table {table}", lambda: out(f"change-{table}"))  # noqa: B023 - step runs it now
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

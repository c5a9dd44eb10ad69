"""Time the choice of k on a build's training sample: select_k as it is (refits only where the choice needs them),
with every k refitted in full (fast=False), and optionally the select_k of another git revision (its model.py);
each the minimum of N runs, with the k, the refits spent and whether the partitions agree.

usage: python scripts/time_select_k.py BUILD.duckdb [N] [--rev REV]   (e.g. --rev 52fb9d4, before issue 33;
       --rev b211d0b, the k rule before issue 34)
"""

import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np

from dagster_project.defs.segmentation import model as seg
from dagster_project.defs.segmentation import selection, training


def training_space(build: str) -> np.ndarray:
    """The model space of the training sample, in the order train_version fits it."""
    con = duckdb.connect(build, read_only=True)
    try:
        frame = training.read_training_frame(con).reset_index(drop=True)
    finally:
        con.close()
    return training.model_space(frame)[2]


def model_at(rev: str, name: str = "model"):
    """``name``.py of the segmentation package at git revision ``rev``, imported as a module of its own: model.py
    (select_k lived there before issue 33), else selection.py."""
    root = Path(__file__).resolve().parents[1]
    text = subprocess.run(
        ["git", "-C", str(root), "show", f"{rev}:dagster_project/defs/segmentation/{name}.py"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if name == "model" and "def select_k" not in text:
        return model_at(rev, "selection")
    path = Path(tempfile.mkdtemp()) / f"{name}_{rev}.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def timed(label: str, run, n: int, z: np.ndarray, ref_labels: np.ndarray | None):
    times, sel = [], None
    for _ in range(n):
        t = time.perf_counter()
        sel = run()
        times.append(time.perf_counter() - t)
    labels = seg.distances(z, sel.centers).argmin(axis=1)
    same = "" if ref_labels is None else f", same partition as the first: {bool((labels == ref_labels).all())}"
    print(
        f"{label}: min {min(times):.2f} s of {', '.join(f'{t:.2f}' for t in times)}; k={sel.k}, "
        f"{len(sel.centers)} segments, refits {int(sel.curve.refits.sum())}{same}",
        flush=True,
    )
    return labels


def main(argv: list[str]) -> None:
    rev = argv[argv.index("--rev") + 1] if "--rev" in argv else None
    args = [a for i, a in enumerate(argv) if a != "--rev" and (i == 0 or argv[i - 1] != "--rev")]
    n = int(args[1]) if len(args) > 1 else 3
    z = training_space(args[0])
    print(f"training sample {z.shape[0]} x {z.shape[1]}; load average {os.getloadavg()[0]:.1f}")
    ref = timed("select_k", lambda: selection.select_k(z), n, z, None)
    timed("select_k fast=False", lambda: selection.select_k(z, fast=False), n, z, ref)
    if rev:
        old = model_at(rev)
        timed(f"select_k at {rev}", lambda: old.select_k(z), n, z, ref)
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main(sys.argv[1:])

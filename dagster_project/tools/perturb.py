"""``lendseg evaluate --perturb``: how far the segmentation moves under a nudge that leaves the data's structure alone
(issue 34, item 1; docs/segmentation.md, "Evaluation").

For a dataset already run once (the unperturbed run, evaluate.py), the first ``daily_refresh`` runs again in a fresh
data dir under each perturbation:

* **two different 90 % client subsamples**: a client is kept when an MD5 of a salt and its pseudonymous key (under the
  demo key) falls in the lower 90 % (:func:`kept`); every landing file is copied without the dropped clients' rows;
* **two k-means seeds**: ``LENDSEG_SEG_SEED`` (model.SEED) set to another value, the data unchanged;
* on a dataset of more than 5,000 scorable clients (the SBA loans): **one other training-sample salt**
  (``LENDSEG_SEG_SAMPLE_SALT``).

Per perturbation: the chosen k (the champion's, ml.model_registry), and the ARI between its published segments and the
unperturbed ones on the clients both scored (:func:`ari_on_common`); :func:`k_stability` summarises them. On the SBA
loans each perturbed run's out-of-time charge-off AUC is measured too (evaluate.measure_sba), summarised min / median.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

KEEP_SHARE = 0.90
SUBSAMPLE_SALTS = ("lendseg-perturb-subsample-a", "lendseg-perturb-subsample-b")
SEED_OFFSETS = (1, 2)  # k-means seeds: model.SEED + offset
OTHER_SAMPLE_SALT = "lendseg-training-sample-perturbed"
SAMPLE_SIZE = 5000  # model.TRAINING_SAMPLE: above it the training sample's salt matters
ARI_BAR, K_BAR = 0.90, 4  # issue 34: k unchanged, and ARI >= 0.90, in at least 4 of the perturbations


@dataclass(frozen=True)
class Perturbation:
    name: str
    subsample_salt: str | None = None  # keep only the clients kept() under this salt
    env: tuple[tuple[str, str], ...] = ()  # LENDSEG_* settings of the perturbed run


def plan(scorable_clients: int, base_seed: int) -> list[Perturbation]:
    """The perturbations of a dataset: two subsamples, two seeds, and above SAMPLE_SIZE clients one sample salt."""
    out = [Perturbation(f"subsample {s[-1]}", subsample_salt=s) for s in SUBSAMPLE_SALTS]
    out += [Perturbation(f"seed +{o}", env=(("LENDSEG_SEG_SEED", str(base_seed + o)),)) for o in SEED_OFFSETS]
    if scorable_clients > SAMPLE_SIZE:
        out.append(Perturbation("sample salt", env=(("LENDSEG_SEG_SAMPLE_SALT", OTHER_SAMPLE_SALT),)))
    return out


def kept(client_key: str, salt: str, share: float = KEEP_SHARE) -> bool:
    """Whether a client is in the ``share`` subsample under ``salt``: MD5 of salt and pseudonymous key, as a
    fraction."""
    h = hashlib.md5(f"{salt}|{client_key}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64 < share


def kept_ids(client_ids: list[str], salt: str, key: str, share: float = KEEP_SHARE) -> set[str]:
    """The client ids whose pseudonymous key (under ``key``) is kept under ``salt``."""
    from dagster_project.lib.pseudonymise import pseudonymise

    return {c for c in client_ids if kept(pseudonymise(key, c), salt, share)}


def ari_on_common(base: pd.Series, other: pd.Series) -> tuple[float, int]:
    """ARI between two partitions (client_key -> segment) on the clients both hold, and how many those are."""
    from sklearn.metrics import adjusted_rand_score

    both = pd.concat([base.rename("a"), other.rename("b")], axis=1, join="inner").dropna()
    if len(both) < 2:
        return float("nan"), len(both)
    return float(adjusted_rand_score(both.a.astype(str), both.b.astype(str))), len(both)


def k_stability(base_k: int | None, results: list[dict]) -> dict:
    """Summary of a dataset's perturbed runs (each {name, k, ari, ...}): k per perturbation, how often k changed, the
    ARIs, and whether issue 34's bar holds (k unchanged and ARI >= 0.90 each in at least 4, or all when fewer)."""
    ks = [r.get("k") for r in results]
    aris = [r.get("ari") for r in results]
    same_k = sum(k is not None and k == base_k for k in ks)
    high = int(sum(a is not None and bool(np.isfinite(a)) and a >= ARI_BAR for a in aris))
    need = min(K_BAR, len(results))
    known = [a for a in aris if a is not None and np.isfinite(a)]
    return {
        "k": base_k,
        "k_per": {r["name"]: r.get("k") for r in results},
        "k_changes": len(results) - same_k,
        "ari_per": {r["name"]: None if r.get("ari") is None else round(r["ari"], 3) for r in results},
        "ari_min": round(min(known), 3) if known else None,
        "ari_median": round(float(np.median(known)), 3) if known else None,
        "ari_at_bar": high,
        "perturbations": len(results),
        "holds": bool(same_k >= need and high >= need),
    }


def auc_summary(aucs: list[float]) -> dict:
    """Min and median of the SBA out-of-time AUCs over the unperturbed and perturbed runs."""
    known = [a for a in aucs if a is not None and np.isfinite(a)]
    return {
        "auc_min": round(min(known), 3) if known else None,
        "auc_median": round(float(np.median(known)), 3) if known else None,
        "runs": len(known),
    }


# ------------------------------------------------------------------------------------------------ landing copies


def copy_landing(src: Path, dst: Path, keep: set[str] | None) -> int:
    """Copy every landing file under ``src`` to ``dst``; with ``keep``, only the rows whose client_id is in it.
    Returns the rows dropped."""
    import duckdb

    dropped = 0
    for f in sorted(p for p in src.rglob("*") if p.is_file()):
        out = dst / f.relative_to(src)
        out.parent.mkdir(parents=True, exist_ok=True)
        if keep is None or f.suffix not in (".csv", ".parquet"):
            shutil.copy2(f, out)
            continue
        con = duckdb.connect()
        try:
            reader = "read_parquet" if f.suffix == ".parquet" else "read_csv"
            opts = "" if f.suffix == ".parquet" else ", all_varchar = true, header = true"
            frame = con.execute(f"SELECT * FROM {reader}(?{opts})", [str(f)]).df()
        finally:
            con.close()
        if "client_id" not in frame.columns:
            shutil.copy2(f, out)
            continue
        mask = frame.client_id.astype(str).isin(keep)
        dropped += int((~mask).sum())
        if f.suffix == ".parquet":
            frame[mask].to_parquet(out, index=False)
        else:
            frame[mask].to_csv(out, index=False)
    return dropped


def landing_client_ids(landing: Path) -> list[str]:
    """Every client_id of the landing zone's client deliveries."""
    import duckdb

    ids: set[str] = set()
    for f in sorted((landing / "clients").glob("*")):
        if f.suffix in (".csv", ".parquet"):
            reader = "read_parquet" if f.suffix == ".parquet" else "read_csv"
            opts = "" if f.suffix == ".parquet" else ", all_varchar = true, header = true"
            con = duckdb.connect()
            try:
                ids |= {
                    r[0] for r in con.execute(f"SELECT DISTINCT client_id FROM {reader}(?{opts})", [str(f)]).fetchall()
                }
            finally:
                con.close()
    return sorted(ids)


# ------------------------------------------------------------------------------------------------ runs


def _slug(name: str) -> str:
    return name.replace(" ", "-").replace("+", "p")


def measure(root: Path, sba: bool = False, base_auc: float | None = None, log=print) -> dict:
    """Run every perturbation of the dataset whose unperturbed run is in ``root`` (evaluate.py's case dir; its landing
    zone and, for the SBA loans, its outcomes are copied) and summarise (:func:`k_stability`, SBA: :func:`auc_summary`).
    Each perturbed run keeps its data dir beside ``root`` and its result in ``perturb_row.json`` (read back, not run
    again, when present)."""
    import json

    from dagster_project.lib.settings import DEFAULTS, DEMO_PII_KEY
    from dagster_project.tools import evaluate as ev

    _, base_k, _, feats = ev._segmented_features(root)
    base = feats.set_index("client_key").segment_id
    landing = root / "data" / "landing"
    ids = landing_client_ids(landing)
    results: list[dict] = []
    for p in plan(len(feats), int(DEFAULTS["LENDSEG_SEG_SEED"])):
        proot = root.parent / f"{root.name}~{_slug(p.name)}"
        done = proot / "perturb_row.json"
        if done.exists():
            results.append(json.loads(done.read_text()))
            continue
        shutil.rmtree(proot, ignore_errors=True)
        keep = kept_ids(ids, p.subsample_salt, DEMO_PII_KEY) if p.subsample_salt else None
        copy_landing(landing, proot / "data" / "landing", keep)
        if sba:
            shutil.copytree(root / "data" / "ground_truth", proot / "data" / "ground_truth")
        ok, secs, text = ev.run_pipeline(proot, dict(p.env))
        r: dict = {
            "name": p.name,
            "k": None,
            "ari": None,
            "common": 0,
            "run_s": round(secs),
            "clients_kept": len(keep) if keep is not None else len(ids),
        }
        if ok:
            published, k, _, pf = ev._segmented_features(proot)
            ari, n = ari_on_common(base, pf.set_index("client_key").segment_id)
            r |= {"k": k, "ari": ari, "common": n, "published_model": published}
            if sba:
                r["auc"] = ev.measure_sba(proot, secs)[1]["model"]["auc"]
        else:
            r["note"] = "run failed: " + text[-200:]
        done.write_text(json.dumps(r))
        log(json.dumps({"perturbation": str(proot.name)} | r))
        results.append(r)
    out = k_stability(base_k, results) | {"runs": results}
    if sba:
        out |= auc_summary([base_auc, *(r.get("auc") for r in results)])
    return out


ORDER = ("subsample a", "subsample b", "seed +1", "seed +2", "sample salt")


def render(rows: list) -> list[str]:
    """Markdown lines of the perturbation table (rows: evaluate.Row with ``perturb`` set)."""
    f = lambda v: "-" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)  # noqa: E731
    rows = [r for r in rows if getattr(r, "perturb", None)]
    if not rows:
        return []
    lines = [
        "",
        f"Under a nudge (`--perturb`): each dataset run again under two {KEEP_SHARE * 100:.0f} % client subsamples "
        "(salted hash of the pseudonymous key), two k-means seeds (`LENDSEG_SEG_SEED`) and, above 5,000 "
        "scorable clients, one other training-sample salt (`LENDSEG_SEG_SAMPLE_SALT`): k of each run, ARI of its "
        "segments against the unperturbed ones on the clients both scored. Bar (issue 34): k unchanged and "
        f"ARI >= {ARI_BAR:.2f}, each in at least {K_BAR} of the perturbations.",
        "",
        "| dataset | seed | k | k per perturbation (" + ", ".join(ORDER) + ") | k changes | ARI per perturbation "
        "| ARI min | ARI median | SBA AUC min / median | bar |",
        "|---|---:|---:|---|---:|---|---:|---:|---|---|",
    ]
    for r in rows:
        p = r.perturb
        ks = " / ".join(f(p["k_per"].get(n)) for n in ORDER if n in p["k_per"])
        aris = " / ".join(f(p["ari_per"].get(n)) for n in ORDER if n in p["ari_per"])
        auc = f"{f(p.get('auc_min'))} / {f(p.get('auc_median'))}" if "auc_min" in p else "-"
        lines.append(
            f"| {r.case} | {f(r.seed)} | {f(p['k'])} | {ks} | {p['k_changes']} of {p['perturbations']} | "
            f"{aris} | {f(p['ari_min'])} | {f(p['ari_median'])} | {auc} | {'holds' if p['holds'] else 'fails'} |"
        )
    return lines

"""``lendseg evaluate``: the segmentation judged on data it was not built on (docs/segmentation.md, "Evaluation").

For every scenario x judging seed (scenarios.py; seeds 101-103, never used for tuning) the real CLI runs the
first ``daily_refresh`` in a fresh temporary data dir, and the published warehouse is compared with the
generator's truth file:

* **published model segments**: every client of ``marts.client_features`` has ``segment_source = model`` in
  ``marts.client_segments`` (prospects and unscored clients keep their rule segment of record);
* **k**, **ARI** of the model's segments vs the planted archetypes, **min clusterboot Jaccard** (ml.model_stability);
* **baseline ARI**: the fixed plain baseline on the same clients - one-hot ``industry_section`` + every numeric
  column of ``marts.client_features`` median-imputed and standardised, ``KMeans(n_init=10)`` at the model's k.

On the SBA sample (sba_import.py) the outcome is held out: segment charge-off rates are estimated on loans
approved in the earlier fiscal years (``ApprovalFY`` up to the latest year with at most 70 % of the loans) and each
later loan is scored with
its segment's earlier rate; AUC with a bootstrap 95 % interval, for the model, the rule segmentation
(segmentation/rules.py) and the plain baseline at the model's k.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from dagster_project.lib.settings import DEMO_PII_KEY, PROJECT_ROOT
from dagster_project.tools import evaluate_apps as apps
from dagster_project.tools import perturb

DOC = PROJECT_ROOT / "docs" / "segmentation.md"
APP_DOC = PROJECT_ROOT / "docs" / apps.DOC_NAME
START, END = "<!-- evaluate:start -->", "<!-- evaluate:end -->"
BASELINE_SEED = 0
N_BOOT = 1000


def lendseg_bin() -> str:
    return str(Path(sys.executable).parent / "lendseg")


def _env(root: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LENDSEG_", "DAGSTER_HOME"))}
    return (
        env
        | (extra or {})
        | {
            "LENDSEG_DATA_DIR": str(root / "data"),
            "DAGSTER_HOME": str(root / "dagster_home"),
            "LENDSEG_DEMO": "1",
            "LENDSEG_DUCKDB_MEMORY_LIMIT": "2GB",
            "GX_ANALYTICS_ENABLED": "false",
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        }
    )


def run_pipeline(root: Path, extra_env: dict[str, str] | None = None) -> tuple[bool, float, str]:
    """The first ``daily_refresh`` in ``root`` (``extra_env``: LENDSEG_* settings of a perturbed run, perturb.py)."""
    t = time.time()
    root.mkdir(parents=True, exist_ok=True)
    p = subprocess.run(
        [lendseg_bin(), "run", "--demo"], cwd=root, env=_env(root, extra_env), capture_output=True, text=True
    )
    return p.returncode == 0, time.time() - t, (p.stdout + p.stderr)[-2000:]


# ------------------------------------------------------------------------------------------------ pure parts


def plain_baseline(features: pd.DataFrame, k: int, seed: int = BASELINE_SEED) -> np.ndarray:
    """The fixed baseline (tools/methods.py)."""
    from dagster_project.tools.methods import plain_baseline as baseline

    return baseline(features, k, seed)


def auc(score: np.ndarray, y: np.ndarray) -> float:
    """ROC AUC by ranks (ties count half)."""
    from scipy.stats import rankdata

    y = np.asarray(y, dtype=bool)
    n1, n0 = y.sum(), (~y).sum()
    if n1 == 0 or n0 == 0:
        return float("nan")
    r = rankdata(score)
    return float((r[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def split_year(fy: pd.Series, early_share: float = 0.70) -> int:
    """The latest fiscal year whose loans up to it are at most ``early_share`` of all (at least the first year)."""
    cum = fy.value_counts(normalize=True).sort_index().cumsum()
    ok = cum[cum <= early_share]
    return int(ok.index.max()) if len(ok) else int(cum.index.min())


def out_of_time_auc(
    segment: pd.Series, y: pd.Series, fy: pd.Series, cut: int, n_boot: int = N_BOOT, seed: int = 0
) -> dict:
    """Segment charge-off rates from loans with fy <= cut; AUC (and bootstrap 95 % CI) on the later loans."""
    early = fy <= cut
    rates = y[early].groupby(segment[early]).mean()
    prior = float(y[early].mean())
    late_seg, late_y = segment[~early], y[~early].to_numpy(dtype=bool)
    score = late_seg.map(rates).fillna(prior).to_numpy(dtype=float)
    point = auc(score, late_y)
    rng = np.random.default_rng(seed)
    boots = [auc(score[i], late_y[i]) for i in (rng.integers(0, len(score), len(score)) for _ in range(n_boot))]
    lo, hi = np.nanpercentile(boots, [2.5, 97.5])
    return {
        "auc": point,
        "lo": float(lo),
        "hi": float(hi),
        "late_loans": int((~early).sum()),
        "segments": int(segment.nunique()),
    }


# ------------------------------------------------------------------------------------------------ one case


@dataclass
class Row:
    case: str
    seed: int | None
    clients: int
    published_model: bool
    k: int | None
    ari: float | None
    baseline_ari: float | None
    min_jaccard: float | None
    run_s: float
    note: str = ""
    methods: dict[str, float] | None = None  # the other methods' ARI (tools/methods.py) on the same clients
    true_k: int | None = None
    perturb: dict | None = None  # perturb.measure: k and ARI per perturbation (lendseg evaluate --perturb)


def _published(root: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(root / "data" / "warehouse.duckdb"), read_only=True)


def _segmented_features(root: Path) -> tuple[bool, int | None, float | None, pd.DataFrame]:
    """Model facts and ``marts.client_features`` with each client's published segment, from the published file."""
    con = _published(root)
    try:
        published, k, min_j = _model_facts(con)
        feats = con.execute(
            "SELECT f.*, s.segment_id FROM marts.client_features f "
            "JOIN marts.client_segments s USING (client_key) ORDER BY client_key"
        ).df()
    finally:
        con.close()
    return published, k, min_j, feats


def _model_facts(con) -> tuple[bool, int | None, float | None]:
    src = con.execute(
        "SELECT count(*) FILTER (WHERE s.segment_source = 'model'), count(*) FROM marts.client_segments s "
        "JOIN marts.client_features f USING (client_key)"
    ).fetchone()
    published = bool(src[1] and src[0] == src[1])
    champ = con.execute("SELECT version, k FROM ml.model_registry WHERE status = 'champion'").fetchall()
    if not champ:
        return published, None, None
    mj = con.execute(
        "SELECT min(mean_jaccard) FROM ml.model_stability WHERE model_version = ?", [champ[0][0]]
    ).fetchone()
    return published, int(champ[0][1]), float(mj[0]) if mj[0] is not None else None


def evaluate_scenario(name: str, seed: int, workdir: Path, clients: int, months: int) -> Row:
    from sklearn.metrics import adjusted_rand_score

    from dagster_project.lib.pseudonymise import pseudonymise
    from dagster_project.tools.demo.generate import generate

    root = workdir / f"{name}-{seed}"
    shutil.rmtree(root, ignore_errors=True)
    truth_path = root / "data" / "ground_truth" / "archetypes.csv"
    generate(
        root / "data" / "landing",
        n_clients=clients,
        months=months,
        seed=seed,
        truth_path=truth_path,
        end_month=date(2026, 10, 1),
        progress=False,
        scenario=name,
    )
    ok, secs, log = run_pipeline(root)
    if not ok:
        return Row(name, seed, clients, False, None, None, None, None, round(secs), "run failed: " + log[-200:])
    truth = pd.read_csv(truth_path)
    truth["client_key"] = [pseudonymise(DEMO_PII_KEY, c) for c in truth.client_id]
    published, k, min_j, feats = _segmented_features(root)
    df = feats.merge(truth[["client_key", "archetype"]], on="client_key", how="inner")
    ari = adjusted_rand_score(df.archetype, df.segment_id)
    true_k = int(df.archetype.nunique())
    others = compare_methods(df.drop(columns=["segment_id", "archetype"]), k or true_k, true_k)
    scores = {m: round(adjusted_rand_score(df.archetype, lab), 3) for m, lab in others.items()}
    return Row(
        name,
        seed,
        len(df),
        published,
        k,
        round(ari, 3),
        scores["plain baseline"],
        round(min_j, 3) if min_j is not None else None,
        round(secs),
        methods=scores,
        true_k=true_k,
    )


def compare_methods(features: pd.DataFrame, k: int, baseline_k: int) -> dict[str, np.ndarray]:
    """Labels of every other method on the same clients: the plain baseline at ``baseline_k``, the alternatives at
    the model's ``k``, and the rule segmentation (tools/methods.py)."""
    from dagster_project.tools import methods

    out = {name: fn(features, baseline_k if name == "plain baseline" else k) for name, fn in methods.METHODS.items()}
    out["rule segmentation"] = methods.rule_segments(features)
    return out


def evaluate_sba(csv: Path, workdir: Path) -> tuple[Row, dict]:
    from dagster_project.tools.sba_import import import_sba

    root = workdir / "sba"
    shutil.rmtree(root, ignore_errors=True)
    truth_path = root / "data" / "ground_truth" / "sba_outcomes.csv"
    import_sba(csv, root / "data" / "landing", truth_path)
    ok, secs, log = run_pipeline(root)
    if not ok:
        return Row("sba", None, 0, False, None, None, None, None, round(secs), "run failed: " + log[-200:]), {}
    return measure_sba(root, secs)


def measure_sba(root: Path, secs: float = 0.0) -> tuple[Row, dict]:
    """SBA figures of a data dir where import-sba + the first run already happened (truth in ground_truth/)."""
    from dagster_project.lib.pseudonymise import pseudonymise

    truth_path = root / "data" / "ground_truth" / "sba_outcomes.csv"
    published, k, min_j, feats = _segmented_features(root)
    truth = pd.read_csv(truth_path)
    keys = {c: pseudonymise(DEMO_PII_KEY, c) for c in truth.client_id.unique()}
    truth["client_key"] = truth.client_id.map(keys)
    others = compare_methods(feats.drop(columns=["segment_id"]), k or 6, k or 6)
    labels = feats[["client_key", "segment_id"]].rename(columns={"segment_id": "model"}).assign(**others)
    loans = truth.merge(labels, on="client_key", how="inner")
    cut = split_year(loans.approval_fy)
    y = loans.charged_off.astype(bool)
    res = {m: out_of_time_auc(loans[m], y, loans.approval_fy, cut) for m in ("model", *others)}
    rates = y.groupby(loans.model).transform("mean")
    res["_in_sample_auc"] = auc(rates.to_numpy(), y.to_numpy())
    res["_split"] = {"cut_fy": cut, "loans": len(loans), "scored_clients": len(feats)}
    return Row(
        "sba", None, len(feats), published, k, None, None, round(min_j, 3) if min_j is not None else None, round(secs)
    ), res


# ------------------------------------------------------------------------------------------------ report

METHOD_ORDER = ("plain baseline", "gaussian mixture", "gower k-medoids", "rule segmentation")


def deciding_score(rows: list[Row], sba: dict) -> dict[str, float]:
    """S per method (docs/segmentation.md, "Choosing the method"): mean over the generated datasets of ARI minus the
    plain baseline's ARI, plus the SBA out-of-time AUC minus the rule segmentation's."""
    gen = [r for r in rows if r.case != "sba" and r.ari is not None and r.methods]
    out = {}
    for m in ("model", *METHOD_ORDER):
        if not gen:
            break
        ari = [r.ari if m == "model" else r.methods[m] for r in gen]
        s = float(np.mean([a - r.methods["plain baseline"] for a, r in zip(ari, gen, strict=False)]))
        if sba and m in sba:
            s += sba[m]["auc"] - sba["rule segmentation"]["auc"]
        out[m] = round(s, 3)
    return out


def render(rows: list[Row], sba: dict, meta: dict) -> str:
    f = lambda v: "-" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = [
        START,
        "",
        f"Measured by `lendseg evaluate` ({meta['when']}; {meta['clients']} generated clients, "
        f"{meta['months']} months per scenario run; first `daily_refresh` in a fresh data dir). ARI against the "
        "planted archetypes (prospects are not scored); the plain baseline at the true number of archetypes, "
        "the alternatives at the model's k.",
        "",
        "| scenario | seed | clients | first run published model segments | k (true) | ARI model | plain baseline | "
        "gaussian mixture | gower k-medoids | rule segmentation | min clusterboot Jaccard | run s |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if r.case == "sba":
            continue
        m = r.methods or {}
        lines.append(
            f"| {r.case} | {f(r.seed)} | {r.clients} | {'yes' if r.published_model else 'no'} | {f(r.k)} "
            f"({f(r.true_k)}) | {f(r.ari)} | "
            + " | ".join(f(m.get(x)) for x in METHOD_ORDER)
            + f" | {f(r.min_jaccard)} | {r.run_s} |"
            + (f" {r.note}" if r.note else "")
        )
    if sba:
        sp = sba["_split"]
        lines += [
            "",
            f"SBA out of time: charge-off rates per segment from loans approved in FY <= {sp['cut_fy']}, "
            f"AUC on the later loans ({sba['model']['late_loans']} of {sp['loans']}), bootstrap 95 % "
            f"interval ({N_BOOT} resamples). In-sample charge-off AUC of the model's segments: "
            f"{sba['_in_sample_auc']:.3f}.",
            "",
            "| method | segments | AUC | 95 % interval |",
            "|---|---:|---:|---|",
        ]
        for m in ("model", *METHOD_ORDER):
            if m in sba:
                a = sba[m]
                lines.append(f"| {m} | {a['segments']} | {a['auc']:.3f} | {a['lo']:.3f} - {a['hi']:.3f} |")
    lines += perturb.render(rows)
    score = deciding_score(rows, sba)
    if score:
        lines += [
            "",
            "Deciding score S (higher is better; the plain baseline scores the SBA term only): "
            + ", ".join(f"{m} **{v:+.3f}**" for m, v in score.items())
            + ".",
        ]
    lines += ["", END]
    return "\n".join(lines)


def write_doc(
    block: str, doc: Path = DOC, start: str = START, end: str = END, heading: str = "## Evaluation (`lendseg evaluate`)"
) -> None:
    """Replace the block between ``start`` and ``end`` in ``doc`` (append it under ``heading`` if missing)."""
    text = doc.read_text()
    if start in text and end in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip() + f"\n\n{heading}\n\n" + block + "\n"
    doc.write_text(text)


@dataclass(frozen=True)
class Case:
    name: str  # scenario name or "demo"
    seed: int
    clients: int
    months: int


def plan_cases(
    scenarios: list[str],
    seeds: list[int],
    clients: int,
    months: int,
    demo_seeds: list[int],
    demo_clients: int,
    demo_months: int,
) -> list[Case]:
    """The demo generator per demo seed (its own size; 18 months give the early-warning calibration the 12 months of
    history up to E it needs - the scenario runs default to 18 months too), then every scenario x seed, seed by seed."""
    return [Case("demo", s, demo_clients, demo_months) for s in demo_seeds] + [
        Case(n, s, clients, months) for s in seeds for n in scenarios if n != "demo"
    ]


def _case_root(workdir: Path, c: Case) -> Path:
    return workdir / f"{c.name}-{c.seed}"


def _reused(root: Path) -> tuple[Row, apps.AppResult] | None:
    p = root / "segmentation_row.json"
    a = apps.load(root)
    return (Row(**json.loads(p.read_text())), a) if p.exists() and a is not None else None


def evaluate(
    scenarios: list[str],
    seeds: list[int],
    clients: int,
    months: int,
    workdir: Path,
    sba_csv: Path | None,
    doc: Path | None,
    log=print,
    demo_seeds: list[int] | None = None,
    demo_clients: int = 3000,
    demo_months: int = 18,
    app_doc: Path | None = None,
    reuse: bool = False,
    perturbed: bool = False,
) -> tuple[list[Row], dict]:
    """Run every case once; segmentation figures -> ``doc``, applications figures (early warnings, recommendations,
    evaluate_apps.py) from the same runs -> ``app_doc`` (rewritten after every case, so a long evaluation shows its
    progress). ``reuse``: a case whose data dir already holds results is measured from them, not run again.
    ``perturbed``: every case is also run under the perturbations of perturb.py (k and ARI per perturbation)."""
    workdir.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    results: list[apps.AppResult] = []
    cases = plan_cases(scenarios, seeds, clients, months, list(demo_seeds or []), demo_clients, demo_months)
    sizes = "; ".join(
        sorted(
            {f"{'demo' if c.name == 'demo' else 'scenarios'}: {c.clients} clients x {c.months} months" for c in cases}
        )
    )
    for c in cases:
        root = _case_root(workdir, c)
        got = _reused(root) if reuse else None
        if got is None:
            r = evaluate_scenario(c.name, c.seed, workdir, c.clients, c.months)
            a = (
                apps.measure(root, c.name, c.seed)
                if not r.note.startswith("run failed")
                else apps.AppResult(c.name, c.seed, ok=False, note=r.note)
            )
            (root / "segmentation_row.json").write_text(json.dumps(asdict(r)))
            apps.save(a, root)
        else:
            r, a = got
        if perturbed and r.perturb is None and not r.note.startswith("run failed"):
            r.perturb = perturb.measure(root, log=log)
            (root / "segmentation_row.json").write_text(json.dumps(asdict(r)))
        log(json.dumps(asdict(r)))
        log(a.to_json())
        rows.append(r)
        results.append(a)
        if app_doc is not None:
            write_doc(
                apps.render(results, {"when": date.today().isoformat(), "sizes": sizes}),
                app_doc,
                apps.START,
                apps.END,
                apps.HEADING,
            )
    sba: dict = {}
    if sba_csv is not None:
        r, sba = evaluate_sba(sba_csv, workdir)
        if perturbed and sba:
            r.perturb = perturb.measure(workdir / "sba", sba=True, base_auc=sba["model"]["auc"], log=log)
        log(json.dumps(asdict(r)) + " " + json.dumps(sba))
        rows.append(r)
    block = render(rows, sba, {"when": date.today().isoformat(), "clients": clients, "months": months})
    (workdir / "segmentation_record.md").write_text(block + "\n")
    if doc is not None:
        write_doc(block, doc)
    return rows, sba

"""The k rules of issue 34 judged under a nudge on the tuning seeds, cheaply (docs/segmentation.md, "The k rule under a
nudge"): per built dataset, the training sample under each perturbation of ``lendseg evaluate --perturb`` - two 90 %
client subsamples (the same salted hash of the pseudonymous key; the model space refitted on the kept clients, as a run
on them does) and two k-means seeds - with every k fitted and refitted in full once (``curves``); then every candidate
rule applied to those curves (``judge``): k per perturbation, ARI on the common clients against the unperturbed choice,
ARI against the planted archetypes.

usage: python scripts/k_rule_nudge.py curves CASE_DIR OUT.pkl   (CASE_DIR: a case dir of lendseg evaluate --workdir)
       python scripts/k_rule_nudge.py judge 'DIR/*.pkl'
"""

import glob
import pickle
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score as ari

from dagster_project.defs.segmentation import model as seg
from dagster_project.defs.segmentation import selection, training
from dagster_project.lib.pseudonymise import pseudonymise
from dagster_project.lib.settings import DEMO_PII_KEY
from dagster_project.tools import perturb

REFITS = 20


# ------------------------------------------------------------------------------------------------ curves


def frame_of(root: Path) -> pd.DataFrame:
    con = duckdb.connect(str(root / "data" / "warehouse.duckdb"), read_only=True)
    try:
        return training.read_training_frame(con).reset_index(drop=True)
    finally:
        con.close()


def full(z: np.ndarray, seed: int) -> list[selection.Candidate]:
    """Every k of K_RANGE fitted and refitted in full (select_k's fast=False), the candidates kept."""
    with seg.single_threaded():
        cands = [selection.candidate(z, k, seed) for k in range(seg.K_RANGE[0], seg.K_RANGE[1] + 1)]
        while (c := selection.next_to_refit(cands, REFITS, fast=False)) is not None:
            jac, a = seg.refit(z, c.labels, c.segments, c.k, c.done, seed=seed)
            c.jaccards.append(jac)
            c.aris.append(a)
    return cands


def curves(root: Path, out: Path) -> None:
    frame = frame_of(root)
    truth = pd.read_csv(root / "data" / "ground_truth" / "archetypes.csv")
    truth["client_key"] = [pseudonymise(DEMO_PII_KEY, c) for c in truth.client_id]
    res: dict = {"truth": truth.set_index("client_key").archetype}
    perts = (
        [("base", None, seg.SEED)]
        + [(f"sub {s[-1]}", s, seg.SEED) for s in perturb.SUBSAMPLE_SALTS]
        + [(f"seed +{o}", None, seg.SEED + o) for o in perturb.SEED_OFFSETS]
    )
    for name, salt, seed in perts:
        t = time.time()
        f = frame if salt is None else frame[[perturb.kept(k, salt) for k in frame.client_key]]
        fr, _, z, _ = training.model_space(f)
        res[name] = {"keys": fr.client_key.to_numpy(), "z": z, "cands": full(z, seed), "seed": seed}
        print(root.name, name, len(fr), f"{time.time() - t:.1f}s", flush=True)
    out.write_bytes(pickle.dumps(res))


# ------------------------------------------------------------------------------------------------ rules


def curve(cands) -> pd.DataFrame:
    return pd.DataFrame([c.row(REFITS) for c in cands]).assign(
        mean_ari=[np.mean(c.aris) if c.aris else np.nan for c in cands]
    )


def finest(pool: pd.DataFrame, tol: float) -> int:
    """The most segments within ``tol`` of the pool's best silhouette (ties: the more stable, the smaller k)."""
    pool = pool[pool.silhouette >= pool.silhouette.max() - tol]
    return int(pool.sort_values(["segments", "min_jaccard", "k"], ascending=[False, False, True]).iloc[0].k)


def most_stable(cv: pd.DataFrame) -> int:
    return int(cv.sort_values(["min_jaccard", "k"], ascending=[False, True]).iloc[0].k)


def old_rule(cands) -> int:
    """The rule of b211d0b: the finest stable k within 0.03 of the best silhouette."""
    return band(0.03)(cands)


def band(tol: float):
    def rule(cands) -> int:
        cv = curve(cands)
        pool = cv[cv.admissible]
        return finest(pool, tol) if len(pool) else most_stable(cv)

    return rule


def pooled(column: str, floor: float, tol: float = 0.03):
    """The pool restricted to the stable k whose ``column`` reaches ``floor`` when there is one."""

    def rule(cands) -> int:
        cv = curve(cands)
        pool = cv[cv.admissible]
        if not len(pool):
            return most_stable(cv)
        best = pool[pool[column] >= floor]
        return finest(best if len(best) else pool, tol)

    return rule


def best_of(column: str):
    def rule(cands) -> int:
        cv = curve(cands)
        pool = cv[cv.admissible]
        return int(pool.sort_values([column, "k"], ascending=[False, True]).iloc[0].k) if len(pool) else most_stable(cv)

    return rule


def ari_band(width: float):
    """The most segments among the stable k within ``width`` of the best mean clusterboot ARI."""

    def rule(cands) -> int:
        cv = curve(cands)
        pool = cv[cv.admissible]
        if not len(pool):
            return most_stable(cv)
        pool = pool[pool.mean_ari >= pool.mean_ari.max() - width]
        return int(pool.sort_values(["segments", "k"], ascending=[False, True]).iloc[0].k)

    return rule


def score(w: float):
    """The stable k of the best silhouette + w x mean clusterboot ARI."""

    def rule(cands) -> int:
        cv = curve(cands)
        pool = cv[cv.admissible]
        if not len(pool):
            return most_stable(cv)
        return int(
            pool.assign(s=pool.silhouette + w * pool.mean_ari)
            .sort_values(["s", "k"], ascending=[False, True])
            .iloc[0]
            .k
        )

    return rule


def gap(cands) -> int:
    """The stable k after which the weakest segment's Jaccard drops most."""
    cv = curve(cands).set_index("k")
    mj = cv.min_jaccard.fillna(0.0)
    pool = cv[cv.admissible].assign(drop=mj - mj.shift(-1).fillna(0.0))
    return int(pool.sort_values("drop", ascending=False).index[0]) if len(pool) else old_rule(cands)


def this_branch(cands) -> int:
    return selection.choose(curve(cands))


RULES = {
    "b211d0b (band 0.03)": old_rule,
    "band 0.06": band(0.06),
    "band 0.10": band(0.10),
    "finest stable": band(1.0),
    "band 0.01": band(0.01),
    "best silhouette": best_of("silhouette"),
    "best mean ARI": best_of("mean_ari"),
    "sil + 0.5 ARI": score(0.5),
    "sil + 1 ARI": score(1.0),
    "ARI band 0.01": ari_band(0.01),
    "ARI band 0.02": ari_band(0.02),
    "gap": gap,
    **{
        f"weakest >= {f:.2f}, band {t:.2f}": pooled("min_jaccard", f, t)
        for f, t in ((0.80, 0.03), (0.85, 0.03), (0.90, 0.03), (0.85, 0.02), (0.85, 0.01), (0.85, 0.0))
    },
    **{f"mean Jaccard >= {f:.2f}": pooled("mean_jaccard", f) for f in (0.90, 0.93, 0.95)},
    "this branch (selection.choose)": this_branch,
}


def labels(d: dict, k: int) -> pd.Series:
    c = next(c for c in d["cands"] if c.k == k)
    return pd.Series(c.labels, index=d["keys"])


def judge(res: dict, rule) -> dict:
    base = res["base"]
    kb = rule(base["cands"])
    lb = labels(base, kb)
    out = {"k": kb, "truth_ari": ari(res["truth"].reindex(lb.index), lb), "ks": [], "aris": []}
    for name in [n for n in res if n not in ("truth", "base")]:
        k = rule(res[name]["cands"])
        both = pd.concat([lb.rename("a"), labels(res[name], k).rename("b")], axis=1, join="inner")
        out["ks"].append(k)
        out["aris"].append(ari(both.a, both.b))
    out["misses"] = sum(k != kb for k in out["ks"]) + sum(a < 0.9 for a in out["aris"])
    out["holds"] = out["misses"] == 0
    return out


def judge_all(pattern: str) -> None:
    data = {Path(f).stem: pickle.loads(Path(f).read_bytes()) for f in sorted(glob.glob(pattern))}
    for name, rule in RULES.items():
        got = {d: judge(res, rule) for d, res in data.items()}
        print(
            f"{name}: holds {sum(o['holds'] for o in got.values())}/{len(got)}, "
            f"misses {sum(o['misses'] for o in got.values())}, "
            f"mean truth ARI {np.mean([o['truth_ari'] for o in got.values()]):.3f}"
        )
        for d, o in got.items():
            print(
                f"   {d:22s} k={o['k']} ks={o['ks']} ari={[round(a, 2) for a in o['aris']]} truth={o['truth_ari']:.3f}"
            )


if __name__ == "__main__":
    if sys.argv[1] == "curves":
        curves(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        judge_all(sys.argv[2])

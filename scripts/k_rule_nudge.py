"""The k rules of issue 34 judged under a nudge on the tuning seeds, cheaply: per built dataset, the training sample
under each perturbation of ``lendseg evaluate --perturb`` (two 90 % client subsamples - the same salted hash of the
pseudonymous key, the model space refitted on the kept clients as a run on them does - and two k-means seeds), every k
fitted and refitted in full once (``curves``), then every candidate rule applied to those curves (``judge``): k per
perturbation, ARI on the common clients against the unperturbed choice, ARI against the planted archetypes.

usage: python scripts/k_rule_nudge.py curves CASE_DIR OUT.pkl   (CASE_DIR: a case dir of lendseg evaluate --workdir)
       python scripts/k_rule_nudge.py judge 'DIR/*.pkl'
"""

import pickle, sys, time
from pathlib import Path
import duckdb, numpy as np, pandas as pd
from dagster_project.defs.segmentation import model as seg, selection, training
from dagster_project.tools import perturb
from dagster_project.lib.pseudonymise import pseudonymise
from dagster_project.lib.settings import DEMO_PII_KEY

def frame_of(root):
    con = duckdb.connect(str(root / "data" / "warehouse.duckdb"), read_only=True)
    try:
        return training.read_training_frame(con).reset_index(drop=True)
    finally:
        con.close()

def full(z, seed, refits=20):
    with seg.single_threaded():
        cands = [selection.candidate(z, k, seed) for k in range(seg.K_RANGE[0], seg.K_RANGE[1] + 1)]
        while (c := selection.next_to_refit(cands, refits, fast=False)) is not None:
            jac, ari = seg.refit(z, c.labels, c.segments, c.k, c.done, seed=seed)
            c.jaccards.append(jac); c.aris.append(ari)
    return cands

def main(root, out):
    root = Path(root)
    frame = frame_of(root)
    truth = pd.read_csv(root / "data" / "ground_truth" / "archetypes.csv")
    truth["client_key"] = [pseudonymise(DEMO_PII_KEY, c) for c in truth.client_id]
    res = {"truth": truth.set_index("client_key").archetype}
    perts = [("base", None, seg.SEED)] + [(f"sub {s[-1]}", s, seg.SEED) for s in perturb.SUBSAMPLE_SALTS] + \
            [(f"seed +{o}", None, seg.SEED + o) for o in perturb.SEED_OFFSETS]
    for name, salt, seed in perts:
        t = time.time()
        f = frame if salt is None else frame[[perturb.kept(k, salt) for k in frame.client_key]]
        fr, x, z, scaler = training.model_space(f)
        res[name] = {"keys": fr.client_key.to_numpy(), "z": z, "cands": full(z, seed), "seed": seed}
        print(root.name, name, len(fr), f"{time.time()-t:.1f}s", flush=True)
    pickle.dump(res, open(out, "wb"))


import pickle, sys, glob
import numpy as np, pandas as pd
from sklearn.metrics import adjusted_rand_score as ari
from dagster_project.defs.segmentation import model as seg, selection

def curve(cands):
    return pd.DataFrame([c.row(20) for c in cands])

def aris_sd(c):
    return float(np.std(c.aris)) if c.aris else np.nan

def r0(cands):  # the rule of main b211d0b
    cv = curve(cands); pool = cv[cv.admissible]
    if not len(pool):
        return int(cv.sort_values(["min_jaccard", "k"], ascending=[False, True]).iloc[0].k)
    pool = pool[pool.silhouette >= pool.silhouette.max() - 0.03]
    return int(pool.sort_values(["segments", "min_jaccard", "k"], ascending=[False, False, True]).iloc[0].k)

def new(cands):  # selection.choose as built on this branch
    return selection.choose(curve(cands))

def tol_rule(tol):
    def r(cands):
        cv = curve(cands); pool = cv[cv.admissible]
        if not len(pool): return r0(cands)
        pool = pool[pool.silhouette >= pool.silhouette.max() - tol]
        return int(pool.sort_values(["segments", "min_jaccard", "k"], ascending=[False, False, True]).iloc[0].k)
    return r

def margin_rule(floor, tol=0.03):
    def r(cands):
        cv = curve(cands); pool = cv[cv.admissible & (cv.min_jaccard >= floor)]
        if not len(pool): return r0(cands)
        pool = pool[pool.silhouette >= pool.silhouette.max() - tol]
        return int(pool.sort_values(["segments", "min_jaccard", "k"], ascending=[False, False, True]).iloc[0].k)
    return r

def best_sil(cands):
    cv = curve(cands); pool = cv[cv.admissible]
    if not len(pool): return r0(cands)
    return int(pool.sort_values(["silhouette", "k"], ascending=[False, True]).iloc[0].k)

def mean_ari_rule(cands):
    cv = curve(cands).assign(mari=[np.mean(c.aris) if c.aris else np.nan for c in cands]); pool = cv[cv.admissible]
    if not len(pool): return r0(cands)
    return int(pool.sort_values(["mari", "k"], ascending=[False, True]).iloc[0].k)

def score_rule(w):  # silhouette + w * mean refit ARI, admissible only
    def r(cands):
        cv = curve(cands).assign(mari=[np.mean(c.aris) if c.aris else np.nan for c in cands]); pool = cv[cv.admissible]
        if not len(pool): return r0(cands)
        return int(pool.assign(s=pool.silhouette + w * pool.mari).sort_values(["s", "k"], ascending=[False, True]).iloc[0].k)
    return r

def weighted_j(cands):  # among admissible, most segments with the size-weighted mean Jaccard band
    cv = curve(cands); pool = cv[cv.admissible]
    return r0(cands)

RULES = {"r0 (tol .03)": r0, "tol .06": tol_rule(0.06), "tol .10": tol_rule(0.10), "tol 1 (finest stable)": tol_rule(1.0),
         "margin .80": margin_rule(0.80), "margin .85": margin_rule(0.85), "margin .85 tol .06": margin_rule(0.85, 0.06),
         "best silhouette": best_sil, "mean ARI": mean_ari_rule, "sil+0.5ari": score_rule(0.5), "sil+1ari": score_rule(1.0)}

def labels(d, k):
    c = next(c for c in d["cands"] if c.k == k)
    return pd.Series(c.labels, index=d["keys"])

def judge(res, rule):
    base = res["base"]; kb = rule(base["cands"]); lb = labels(base, kb)
    truth = res["truth"].reindex(lb.index)
    out = {"k": kb, "truth_ari": ari(truth, lb), "ks": [], "aris": []}
    for name in [n for n in res if n not in ("truth", "base")]:
        d = res[name]; k = rule(d["cands"]); l = labels(d, k)
        both = pd.concat([lb.rename("a"), l.rename("b")], axis=1, join="inner")
        out["ks"].append(k); out["aris"].append(ari(both.a, both.b))
    out["holds"] = sum(k == kb for k in out["ks"]) >= len(out["ks"]) and min(out["aris"]) >= 0.9
    return out


def ari_band(band, floor=0.75):
    def r(cands):
        cv = curve(cands).assign(mari=[np.mean(c.aris) if c.aris else np.nan for c in cands])
        pool = cv[cv.admissible & (cv.min_jaccard >= floor)]
        if not len(pool): return r0(cands)
        pool = pool[pool.mari >= pool.mari.max() - band]
        return int(pool.sort_values(["segments", "k"], ascending=[False, True]).iloc[0].k)
    return r

def tiered(floor, tol=0.03):
    def r(cands):
        cv = curve(cands); pool = cv[cv.admissible & (cv.min_jaccard >= floor)]
        if not len(pool): pool = cv[cv.admissible]
        if not len(pool): return r0(cands)
        pool = pool[pool.silhouette >= pool.silhouette.max() - tol]
        return int(pool.sort_values(["segments", "min_jaccard", "k"], ascending=[False, False, True]).iloc[0].k)
    return r

RULES = {k: v for k, v in RULES.items() if k in ("r0 (tol .03)", "margin .80", "margin .85", "best silhouette", "mean ARI")}
RULES |= {"margin .85 tol .02": margin_rule(0.85, 0.02), "margin .85 tol .05": margin_rule(0.85, 0.05),
          "margin .90": margin_rule(0.90), "tiered .85": tiered(0.85), "tiered .90": tiered(0.90),
          "ari band .01": ari_band(0.01), "ari band .02": ari_band(0.02), "ari band .01 J.85": ari_band(0.01, 0.85),
          "ari band .02 J.85": ari_band(0.02, 0.85), "branch rule": new}


def judge_all(pattern):
    files = sorted(glob.glob(pattern))
    data = {f.split("/")[-1][:-4]: pickle.load(open(f, "rb")) for f in files}
    for rn, rule in RULES.items():
        held, tari, miss = 0, [], 0
        lines = []
        for dn, res in data.items():
            o = judge(res, rule); held += o["holds"]; tari.append(o["truth_ari"])
            miss += sum(k != o["k"] for k in o["ks"]) + sum(a < 0.9 for a in o["aris"])
            lines.append(f"   {dn:22s} k={o['k']} ks={o['ks']} ari={[round(a,2) for a in o['aris']]} truth={o['truth_ari']:.3f}")
        print(f"{rn}: holds {held}/{len(data)}, misses {miss}, mean truth ARI {np.mean(tari):.3f}")
        print("\n".join(lines))


if __name__ == "__main__":
    if sys.argv[1] == "curves":
        main(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "judge":
        pass  # after every rule is defined (end of file)


def gap_rule(cands):
    """The admissible k after which the weakest segment's Jaccard drops most (the k before the largest drop)."""
    cv = curve(cands).set_index("k")
    mj = cv.min_jaccard.fillna(0.0)
    drop = mj - mj.shift(-1).fillna(0.0)
    pool = cv[cv.admissible].assign(drop=drop)
    if not len(pool):
        return r0(cands)
    return int(pool.sort_values(["drop"], ascending=False).index[0])


def mean_j_rule(floor, tol=0.03):
    """The pool restricted to k whose segments' mean Jaccard (not the weakest's) reaches ``floor``."""
    def r(cands):
        cv = curve(cands).assign(mj=[np.mean(list(c.stability().jaccard.values())) if c.done else np.nan for c in cands])
        pool = cv[cv.admissible & (cv.mj >= floor)]
        if not len(pool):
            pool = cv[cv.admissible]
        if not len(pool):
            return r0(cands)
        pool = pool[pool.silhouette >= pool.silhouette.max() - tol]
        return int(pool.sort_values(["segments", "min_jaccard", "k"], ascending=[False, False, True]).iloc[0].k)
    return r


RULES |= {"gap": gap_rule, "meanJ .90": mean_j_rule(0.90), "meanJ .93": mean_j_rule(0.93),
          "meanJ .95": mean_j_rule(0.95), "margin .85 tol .01": margin_rule(0.85, 0.01),
          "tiered .85 tol .01": tiered(0.85, 0.01), "tiered .85 tol .02": tiered(0.85, 0.02),
          "tiered .85 tol .00": tiered(0.85, 0.0), "tol .01": tol_rule(0.01)}

if __name__ == "__main__" and sys.argv[1] == "judge":
    judge_all(sys.argv[2])

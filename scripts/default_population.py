"""Issue 34 item 2, measured offline on built warehouses: who the segmentation trains on.

For each case dir of ``lendseg evaluate --workdir`` (a first run done, ``ground_truth/archetypes.csv`` beside it):
the product's selection (``selection.select_k``, the k rule of record) fitted on the training sample drawn two ways -
``all``: every scorable client (the product before issue 34 item 2), ``performing``: clients in default (rating grade D,
dbt's default trigger) left out - and every scorable client scored by the nearest centroid (as ``score_frame`` does);
``own segment``: as ``performing``, the clients in default then in one segment of their own.
Printed per case and population: clients trained on, k, ARI of all scored clients against the planted archetypes, ARI
of the clients in default only, and how many segments hold more than half of the clients in default.

usage: python scripts/default_population.py CASE_DIR [CASE_DIR ...]
"""

import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score as ari

from dagster_project.defs.segmentation import credit_state, selection, training
from dagster_project.defs.segmentation import features as feat
from dagster_project.defs.segmentation import model as seg
from dagster_project.lib.pseudonymise import pseudonymise
from dagster_project.lib.settings import DEMO_PII_KEY


def frames(root: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    con = duckdb.connect(str(root / "data" / "warehouse.duckdb"), read_only=True)
    try:
        every = con.execute(training.sample_sql(seg.TRAINING_SAMPLE)).df()
        perf = con.execute(training.sample_sql(seg.TRAINING_SAMPLE, performing_only=True)).df()
        scored = con.execute(training.feature_sql()).df()
    finally:
        con.close()
    return every, perf, scored


def measure(root: Path) -> list[dict]:
    every, perf, scored = frames(root)
    truth = pd.read_csv(root / "data" / "ground_truth" / "archetypes.csv")
    truth["client_key"] = [pseudonymise(DEMO_PII_KEY, c) for c in truth.client_id]
    arche = scored.client_key.map(truth.set_index("client_key").archetype)
    known = arche.notna().to_numpy()
    default = credit_state.in_default(scored.rating_grade)
    out = []
    for name, frame in (("all", every), ("performing", perf)):
        t = time.time()
        _, _, z, scaler = training.model_space(frame)
        sel = selection.select_k(z)
        zs = scaler.transform(feat.prepare(scored))
        labels, _ = seg.confidence(seg.distances(zs, sel.centers))
        secs = round(time.time() - t, 1)
        variants = [(name, labels)]
        if name == "performing":  # C: as B, every client in default then in one segment of its own
            variants.append(("own segment", np.where(default, len(sel.centers), labels)))
        for vname, lab in variants:
            d = default & known
            shares = pd.Series(lab[d]).value_counts(normalize=True)
            out.append(
                {
                    "case": root.name,
                    "placement": vname,
                    "rows": len(frame),
                    "k": len(sel.centers),
                    "ari": round(ari(arche[known], lab[known]), 3),
                    "in_default": int(default.sum()),
                    "largest_share_of_defaults": round(float(shares.max()), 3) if len(shares) else None,
                    "s": secs,
                }
            )
            print(out[-1], flush=True)
    return out


if __name__ == "__main__":
    for p in sys.argv[1:]:
        measure(Path(p))

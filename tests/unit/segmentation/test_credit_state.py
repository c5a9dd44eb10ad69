"""Clients in default: not trained on, scored into their business segment, left out of drift (credit_state.py)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from dagster_project.defs.segmentation import credit_state, training
from dagster_project.defs.segmentation.registry import load_meta, model_dir
from dagster_project.defs.segmentation.scoring import score_all
from synthetic import synthetic
from test_training import assignments, build


def test_in_default_is_grade_d_in_python_and_in_sql() -> None:
    frame = pd.DataFrame({"client_key": list("abcdef"), "rating_grade": ["R1", "D", None, "unrated", "D", "R8"]})
    assert credit_state.in_default(frame.rating_grade).tolist() == [False, True, False, False, True, False]
    con = duckdb.connect()
    con.register("frame", frame)
    in_sql = [r[0] for r in con.execute(f"SELECT client_key FROM frame f WHERE {credit_state.performing_sql()} "
                                        "ORDER BY client_key").fetchall()]
    assert in_sql == credit_state.performing(frame).client_key.tolist() == ["a", "c", "d", "f"]


def test_the_training_sample_leaves_clients_in_default_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    df = synthetic(400, seed=3, defaulted=0.1)
    defaulted = int((df.rating_grade == "D").sum())
    assert 20 <= defaulted <= 60
    s = build(tmp_path, df, monkeypatch)
    con = duckdb.connect(str(s.build_path), read_only=True)
    try:
        sample = con.execute(training.sample_sql(10_000)).df()
        every = con.execute(training.sample_sql(10_000, performing_only=False)).df()
        capped = con.execute(training.sample_sql(100)).df()
    finally:
        con.close()
    assert len(every) == 400 and len(sample) == 400 - defaulted
    assert not (sample.rating_grade == "D").any() and len(capped) == 100 and not (capped.rating_grade == "D").any()
    # the performing clients keep their key-free order: the sample is the full order without the clients in default
    assert sample.client_key.tolist() == every[every.rating_grade != "D"].client_key.tolist()


def test_clients_in_default_are_scored_into_their_groups_segment(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    df = synthetic(900, seed=5, defaulted=0.12)
    d = (df.rating_grade == "D").to_numpy()
    s = build(tmp_path, df, monkeypatch)
    sc = score_all(s, "run-default")
    assert sc.version == "m0001" and sc.clients == 900, "every client scored, the model promoted"
    meta = load_meta(model_dir(s), "m0001")
    assert meta["training_rows"] == 900 - d.sum() and meta["in_default_left_out"] == d.sum()
    got = assignments(s).set_index("client_key").segment_id.reindex(df.client_key).to_numpy()
    truth = df.truth.to_numpy()
    # each group's segment: where most of its performing clients are; the clients in default of the group go there
    home = {g: pd.Series(got[(truth == g) & ~d]).mode().iat[0] for g in np.unique(truth[~d])}
    placed = np.array([got[i] == home[truth[i]] for i in np.flatnonzero(d)])
    assert placed.mean() >= 0.95, f"{placed.mean():.2f} of the clients in default in their group's segment"
    assert len(set(got[d])) > 1, "clients in default of different groups are not gathered in one segment"
    # drift compares the training distribution with the scored clients not in default: the default features are stable
    psi = sc.drift.set_index("feature").psi
    assert psi["bureau_max_days_past_due_12m"] < 0.10 and psi["months_in_arrears_12m"] < 0.10
    assert psi["segment_mix"] < 0.10

"""Clients in default (credit_state.py): the predicates in Python and SQL, the sample without them (measurement only),
and the decision of issue 34 - trained on, scored, kept in their model segment."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pytest
from synthetic import synthetic
from test_training import assignments, build

from dagster_project.defs.segmentation import credit_state, training
from dagster_project.defs.segmentation.registry import load_meta, model_dir
from dagster_project.defs.segmentation.scoring import score_all


def test_in_default_is_grade_d_in_python_and_in_sql() -> None:
    frame = pd.DataFrame({"client_key": list("abcdef"), "rating_grade": ["R1", "D", None, "unrated", "D", "R8"]})
    assert credit_state.in_default(frame.rating_grade).tolist() == [False, True, False, False, True, False]
    con = duckdb.connect()
    con.register("frame", frame)
    in_sql = [
        r[0]
        for r in con.execute(
            f"SELECT client_key FROM frame f WHERE {credit_state.performing_sql()} ORDER BY client_key"
        ).fetchall()
    ]
    assert in_sql == credit_state.performing(frame).client_key.tolist() == ["a", "c", "d", "f"]


def test_the_sample_without_clients_in_default_keeps_the_key_free_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    df = synthetic(400, seed=3, defaulted=0.1)
    defaulted = int((df.rating_grade == "D").sum())
    assert 0 < defaulted < 400
    s = build(tmp_path, df, monkeypatch)
    con = duckdb.connect(str(s.build_path), read_only=True)
    try:
        every = con.execute(training.sample_sql(10_000)).df()
        sample = con.execute(training.sample_sql(10_000, performing_only=True)).df()
        capped = con.execute(training.sample_sql(100, performing_only=True)).df()
    finally:
        con.close()
    assert len(every) == 400 and len(sample) == 400 - defaulted
    assert not (sample.rating_grade == "D").any() and len(capped) == 100 and not (capped.rating_grade == "D").any()
    # the performing clients keep their key-free order: the sample is the full order without the clients in default
    assert sample.client_key.tolist() == every[every.rating_grade != "D"].client_key.tolist()


def test_clients_in_default_are_trained_on_and_scored_into_a_model_segment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    df = synthetic(600, seed=5, defaulted=0.1)
    d = credit_state.in_default(df.rating_grade)
    s = build(tmp_path, df, monkeypatch)
    sc = score_all(s, "run-default")
    assert sc.version == "m0001" and sc.clients == 600, "every client scored, the model promoted"
    assert load_meta(model_dir(s), "m0001")["training_rows"] == 600, "clients in default trained on"
    got = assignments(s).set_index("client_key").reindex(df.client_key)
    assert d.sum() > 60 and (got.segment_id[d] > 0).all() and got.reason_1[d].notna().all()

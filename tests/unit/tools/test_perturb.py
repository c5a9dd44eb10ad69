"""The pure parts of ``lendseg evaluate --perturb`` (tools/perturb.py): subsample, ARI on common clients, k summary."""

import hashlib
from pathlib import Path

import pandas as pd
import pytest

from dagster_project.tools import perturb
from dagster_project.tools.evaluate import Row


def test_subsample_is_a_salted_hash_of_the_key_about_90_percent_and_differs_by_salt() -> None:
    keys = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(4000)]
    a = {k for k in keys if perturb.kept(k, "salt-a")}
    b = {k for k in keys if perturb.kept(k, "salt-b")}
    assert 0.87 < len(a) / len(keys) < 0.93 and 0.87 < len(b) / len(keys) < 0.93
    assert a != b and 0.75 < len(a & b) / len(keys) < 0.87  # two independent 90 % draws share about 81 %
    assert a == {k for k in reversed(keys) if perturb.kept(k, "salt-a")}  # the order the clients come in is irrelevant
    ids = [f"C{i:04d}" for i in range(200)]
    assert perturb.kept_ids(ids, "salt-a", "key-1") != perturb.kept_ids(ids, "salt-a", "key-2")


def test_ari_counts_only_the_clients_both_partitions_hold() -> None:
    base = pd.Series([1, 1, 2, 2, 3, 3], index=list("abcdef"))
    relabelled = pd.Series([7, 7, 9, 9], index=list("abcd"))  # e, f dropped by the subsample; labels renamed
    assert perturb.ari_on_common(base, relabelled) == (pytest.approx(1.0), 4)
    moved = pd.Series([7, 9, 9, 9, 5, 5], index=list("abcdef"))
    ari, n = perturb.ari_on_common(base, moved)
    assert n == 6 and ari < 0.9


def test_k_stability_counts_changes_and_the_bar() -> None:
    runs = [
        {"name": "subsample a", "k": 6, "ari": 0.97},
        {"name": "subsample b", "k": 6, "ari": 0.95},
        {"name": "seed +1", "k": 7, "ari": 0.81},
        {"name": "seed +2", "k": 6, "ari": 0.99},
    ]
    s = perturb.k_stability(6, runs)
    assert s["k_changes"] == 1 and s["ari_at_bar"] == 3 and s["ari_min"] == 0.81 and s["ari_median"] == 0.96
    assert s["k_per"] == {"subsample a": 6, "subsample b": 6, "seed +1": 7, "seed +2": 6}
    assert not s["holds"]  # 4 perturbations: all four must keep k
    five = runs + [{"name": "sample salt", "k": 6, "ari": 0.93}]
    assert perturb.k_stability(6, five)["holds"] is True  # k and ARI >= 0.90 each in 4 of 5
    five[0] = {"name": "subsample a", "k": 5, "ari": 0.97}
    assert perturb.k_stability(6, five)["holds"] is False  # k changed twice
    failed = perturb.k_stability(6, [{"name": "seed +1", "k": None, "ari": None}])
    assert failed["k_changes"] == 1 and failed["ari_min"] is None and not failed["holds"]
    assert perturb.auc_summary([0.85, 0.63, None, 0.80]) == {"auc_min": 0.63, "auc_median": 0.8, "runs": 3}


def test_plan_varies_the_sample_salt_only_above_the_training_sample() -> None:
    small = perturb.plan(3000, 100)
    assert [p.name for p in small] == ["subsample a", "subsample b", "seed +1", "seed +2"]
    assert dict(small[2].env) == {"LENDSEG_SEG_SEED": "101"} and small[0].subsample_salt != small[1].subsample_salt
    assert [p.name for p in perturb.plan(6000, 100)][-1] == "sample salt"


def test_landing_copy_drops_the_rows_of_clients_not_kept(tmp_path: Path) -> None:
    src = tmp_path / "landing"
    (src / "clients").mkdir(parents=True)
    (src / "product_usage").mkdir()
    (src / "clients" / "c.csv").write_text("client_id,name\nC1,a\nC2,b\nC3,c\n")
    pd.DataFrame({"client_id": ["C1", "C3", "C3"], "v": [1, 2, 3]}).to_parquet(src / "product_usage" / "u.parquet")
    assert perturb.landing_client_ids(src) == ["C1", "C2", "C3"]
    assert perturb.copy_landing(src, tmp_path / "out", {"C1", "C2"}) == 3
    assert pd.read_csv(tmp_path / "out" / "clients" / "c.csv").client_id.tolist() == ["C1", "C2"]
    assert pd.read_parquet(tmp_path / "out" / "product_usage" / "u.parquet").client_id.tolist() == ["C1"]


def test_record_lists_k_and_ari_per_perturbation() -> None:
    runs = [{"name": "subsample a", "k": 6, "ari": 0.97}, {"name": "seed +1", "k": 5, "ari": 0.7}]
    row = Row("thin_file", 201, 1000, True, 6, 0.6, 0.6, 0.9, 50, perturb=perturb.k_stability(6, runs))
    lines = perturb.render([row, Row("demo", 7, 1000, True, 6, 0.9, 0.7, 0.9, 50)])
    assert len(lines) == 6 and lines[-1].startswith("| thin_file | 201 | 6 | 6 / 5 | 1 of 2 | 0.970 / 0.700 |")
    assert lines[-1].endswith("| fails |")

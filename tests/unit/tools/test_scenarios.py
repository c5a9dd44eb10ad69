"""Generator scenarios (dagster_project/tools/demo/scenarios.py) keep their structural promises (issue 11, item 3)."""

from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from dagster_project.tools.demo import profiles as g
from dagster_project.tools.demo import scenarios as S
from dagster_project.tools.demo.generate import generate

CLIENTS = 3000


def _load(root: Path, name: str, seed: int = 201) -> tuple[pd.DataFrame, set[str]]:
    generate(root / "landing", n_clients=CLIENTS, months=4, seed=seed, truth_path=root / "truth" / "truth.csv",
             end_month=date(2026, 10, 1), progress=False, scenario=name)
    con = duckdb.connect()
    clients = con.execute(f"SELECT client_id, industry_code, province_code, employee_count "
                          f"FROM read_csv('{root}/landing/clients/*.csv', all_varchar=true)").df()
    bureau = set(con.execute(f"SELECT DISTINCT client_id FROM read_csv('{root}/landing/credit_bureau/*.csv', "
                             f"all_varchar=true)").df().client_id)
    truth = pd.read_csv(root / "truth" / "truth.csv")
    return truth.merge(clients, on="client_id", validate="1:1"), bureau


@pytest.mark.parametrize("name", list(S.SCENARIOS))
def test_scenario_structure(tmp_path: Path, name: str) -> None:
    sc = S.SCENARIOS[name]
    df, bureau = _load(tmp_path, name)
    assert not list((tmp_path / "landing").rglob("truth*"))  # the answer key stays outside the landing zone
    customers = df[df.archetype != "prospect"]
    shares = customers.archetype.value_counts(normalize=True)
    assert 5 <= len(sc.archetypes) <= 9 and set(shares.index) == set(sc.archetypes)
    assert set(sc.archetypes).isdisjoint(set(g.ARCHETYPES) - {"prospect"})  # not the demo's archetypes
    sections = {a: {d[0] for d in p.divisions} for a, p in sc.profiles.items()}
    off = (~pd.Series([c[0] in sections[a] for a, c in zip(customers.archetype, customers.industry_code)])).mean()
    assert off >= 0.30, off
    assert 0.01 <= shares[sc.small_group] <= 0.02, shares[sc.small_group]
    no_bureau = 1 - customers.client_id.isin(bureau).mean()
    if name == "thin_file":
        assert no_bureau >= 0.40, no_bureau
    top5 = df.province_code.value_counts(normalize=True).head(5).sum()
    assert top5 >= 0.58, top5  # demo: about 0.50
    assert g.PROFILES is not sc.profiles and g._OFF_INDUSTRY_POOL is None  # the demo tables are restored


def test_demo_scenario_is_the_default(tmp_path: Path) -> None:
    a = generate(tmp_path / "a", n_clients=300, months=2, seed=5, end_month=date(2026, 10, 1), progress=False)
    b = generate(tmp_path / "b", n_clients=300, months=2, seed=5, end_month=date(2026, 10, 1), progress=False,
                 scenario="demo")
    for src in a:
        for pa, pb in zip(a[src], b[src]):
            assert pa.read_bytes() == pb.read_bytes()
    with pytest.raises(ValueError, match="unknown scenario"):
        generate(tmp_path / "c", n_clients=10, months=1, scenario="nope", progress=False)

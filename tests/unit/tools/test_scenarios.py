"""Generator scenarios (dagster_project/tools/demo/scenarios.py) keep their structural promises (issue 11, item 3)."""

from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from dagster_project.tools.demo import defaults as D
from dagster_project.tools.demo import profiles as g
from dagster_project.tools.demo import scenarios as S
from dagster_project.tools.demo.generate import generate

CLIENTS = 3000


def _load(root: Path, name: str, seed: int = 201) -> tuple[pd.DataFrame, set[str]]:
    generate(
        root / "landing",
        n_clients=CLIENTS,
        months=4,
        seed=seed,
        truth_path=root / "truth" / "truth.csv",
        end_month=date(2026, 10, 1),
        progress=False,
        scenario=name,
    )
    con = duckdb.connect()
    clients = con.execute(
        f"SELECT client_id, industry_code, province_code, employee_count "
        f"FROM read_csv('{root}/landing/clients/*.csv', all_varchar=true)"
    ).df()
    bureau = set(
        con.execute(f"SELECT DISTINCT client_id FROM read_csv('{root}/landing/credit_bureau/*.csv', all_varchar=true)")
        .df()
        .client_id
    )
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
    off = (
        ~pd.Series([c[0] in sections[a] for a, c in zip(customers.archetype, customers.industry_code, strict=False)])
    ).mean()
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
    b = generate(
        tmp_path / "b", n_clients=300, months=2, seed=5, end_month=date(2026, 10, 1), progress=False, scenario="demo"
    )
    for src in a:
        for pa, pb in zip(a[src], b[src], strict=False):
            assert pa.read_bytes() == pb.read_bytes()
    with pytest.raises(ValueError, match="unknown scenario"):
        generate(tmp_path / "c", n_clients=10, months=1, scenario="nope", progress=False)


# ---- planted defaults (issue 17) ----------------------------------------------------------------------------

END = date(2026, 10, 1)
# demo output before issue 17, plus contract v1.1's term_months and security_type (every other byte unchanged: checked
# against the previous generator with the two columns left out)
DEMO_SHA256 = "2cbc144037a04dae6817dce42926777f3565da68d4f83a1c5c25a576df25e8e0"


def _with_defaults(root: Path, name: str, clients: int = 2000, months: int = 18, seed: int = 201):
    generate(
        root / "landing",
        n_clients=clients,
        months=months,
        seed=seed,
        truth_path=root / "truth" / "truth.csv",
        end_month=END,
        progress=False,
        scenario=name,
    )
    con = duckdb.connect()
    usage = con.execute(
        f"SELECT client_id, snapshot_month, max(days_past_due) AS dpd, "
        f"sum(outstanding_balance) / sum(credit_limit) AS util "
        f"FROM read_csv('{root}/landing/product_usage/*.csv') GROUP BY ALL"
    ).df()
    bureau = con.execute(
        f"SELECT client_id, report_date, bureau_score, operating_cash_flow "
        f"FROM read_csv('{root}/landing/credit_bureau/*.csv')"
    ).df()
    truth = pd.read_csv(root / "truth" / "truth.csv")
    planted = pd.read_csv(
        root / "truth" / "planted_defaults.csv", parse_dates=["decline_start_month", "first_90_month"]
    )
    usage["snapshot_month"] = pd.to_datetime(usage.snapshot_month)
    bureau["report_date"] = pd.to_datetime(bureau.report_date)
    return usage, bureau, truth, planted


@pytest.mark.parametrize("name", list(S.SCENARIOS))
def test_scenarios_plant_defaults_of_any_archetype_that_reach_90_dpd(tmp_path: Path, name: str) -> None:
    spec = S.SCENARIOS[name].defaults
    usage, _bureau, truth, planted = _with_defaults(tmp_path, name)
    customers = truth[truth.archetype != "prospect"]
    assert len(planted) == round(spec.share * len(customers))  # the scenario's share of the customers
    assert 0.04 <= spec.share <= 0.08
    arch = planted.merge(truth, on="client_id").archetype
    assert "prospect" not in set(arch) and arch.nunique() >= 4  # any archetype, not a separate one
    shares = planted.pathway.value_counts(normalize=True)
    for p, want in zip(D.PATHWAYS, spec.mix, strict=False):
        assert abs(shares.get(p, 0.0) - want) <= 0.12, (p, shares.to_dict())
    # the outcome the warehouse sees: first 90+ dpd month == the planted month; nobody else reaches 90+ dpd
    first90 = usage[usage.dpd >= 90].groupby("client_id").snapshot_month.min()
    due = planted[planted.first_90_month <= pd.Timestamp(END)].set_index("client_id").first_90_month
    assert set(first90.index) == set(due.index)
    assert (first90.loc[due.index] == due).all()
    assert len(due) >= 0.7 * len(planted)  # most inside the window, some only after it
    assert first90.groupby(first90.dt.to_period("Q")).size().min() >= 3  # spread over the window, not one month


def test_deterioration_precedes_the_default_by_pathway(tmp_path: Path) -> None:
    usage, bureau, _truth, planted = _with_defaults(tmp_path, "diversified", clients=3000)
    first = usage.snapshot_month.min()
    u = usage.merge(planted, on="client_id")
    k = (
        (u.snapshot_month.dt.year - u.first_90_month.dt.year) * 12
        + u.snapshot_month.dt.month
        - u.first_90_month.dt.month
    )
    u = u.assign(k=k, in_decline=(u.snapshot_month >= u.decline_start_month) & (k <= -3))
    seen = planted[planted.decline_start_month >= first + pd.DateOffset(months=1)]  # decline fully inside the data

    def rate(pathway: str, cond) -> float:
        ids = seen[seen.pathway == pathway].client_id
        x = u[u.client_id.isin(ids) & u.in_decline]
        return x.assign(c=cond(x)).groupby("client_id").c.any().mean()

    # arrears-led: late payments during the decline (before the last 2 months); abrupt: (almost) none
    assert rate("arrears", lambda x: x.dpd.between(1, 89)) >= 0.85
    assert rate("abrupt", lambda x: x.dpd >= 30) <= 0.3
    # every pathway: 30+ dpd 2 months before, 60+ 1 month before the first 90+ month
    assert (u[u.k == -2].dpd >= 1).all() and (u[(u.k == -1) & (u.pathway != "abrupt")].dpd >= 60).all()
    # financial: utilisation climbs and the bureau score falls over the decline; cash flow turns negative
    fin = u[u.client_id.isin(seen[seen.pathway == "financial"].client_id)]
    at_start = fin[fin.snapshot_month == fin.decline_start_month].set_index("client_id").util
    before = fin[fin.k == -3].set_index("client_id").util
    both = at_start.index.intersection(before.index)
    assert len(both) >= 10 and (before[both] - at_start[both]).mean() >= 0.15
    b = bureau.merge(planted[planted.pathway == "financial"], on="client_id")
    b = b[b.report_date < b.first_90_month - pd.DateOffset(months=2)]
    early = b[b.report_date < b.decline_start_month].groupby("client_id").bureau_score.last()
    late = b.groupby("client_id").bureau_score.last()
    common = early.index.intersection(late.index)
    assert len(common) >= 10 and (early[common] - late[common]).mean() >= 40
    assert (b.groupby("client_id").operating_cash_flow.min() < 0).mean() >= 0.7


def test_demo_output_is_untouched_by_the_planted_defaults(tmp_path: Path) -> None:
    import hashlib

    files = generate(
        tmp_path / "l",
        n_clients=400,
        months=6,
        seed=5,
        end_month=END,
        progress=False,
        truth_path=tmp_path / "t" / "truth.csv",
    )
    h = hashlib.sha256()
    for src in sorted(files):
        for p in files[src]:
            h.update(p.name.encode())
            h.update(p.read_bytes())
    h.update((tmp_path / "t" / "truth.csv").read_bytes())
    assert h.hexdigest() == DEMO_SHA256
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == ["truth.csv"]  # no planted-defaults key
    assert g._DEFAULTS is None
    with S.applied("thin_file"):
        assert g._DEFAULTS is not None
    assert g._DEFAULTS is None  # restored after a scenario


def test_planted_defaults_draw_from_their_own_stream(tmp_path: Path) -> None:
    # the clients file of a scenario is the same with and without planted defaults: the plan never draws from the
    # generator's random stream, it only overwrites the planted clients' arrears, utilisation and bureau figures
    a = generate(
        tmp_path / "a", n_clients=500, months=6, seed=9, end_month=END, progress=False, scenario="coastal_industry"
    )
    b = generate(
        tmp_path / "b", n_clients=500, months=6, seed=9, end_month=END, progress=False, scenario="coastal_industry"
    )
    for src in a:
        assert [p.read_bytes() for p in a[src]] == [p.read_bytes() for p in b[src]]  # deterministic
    sc = S.SCENARIOS["coastal_industry"]
    S.SCENARIOS["coastal_industry"] = S.Scenario(**{**sc.__dict__, "defaults": D.Defaults(0.0, (1.0, 0.0, 0.0))})
    try:
        c = generate(
            tmp_path / "c", n_clients=500, months=6, seed=9, end_month=END, progress=False, scenario="coastal_industry"
        )
    finally:
        S.SCENARIOS["coastal_industry"] = sc
    assert a["clients"][0].read_bytes() == c["clients"][0].read_bytes()

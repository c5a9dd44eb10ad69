"""Cost follows what is new: the incremental dbt models, advanced by deliveries, equal a rebuild from scratch.

A scratch warehouse (ingestion without Dagster, plain dbt; tests/scratch_warehouse.py) loads three months and is
built. Then a corrected file of the first month arrives and dbt builds incrementally; then the fourth month arrives
and dbt builds incrementally again. Each incremental build must build only the changed months (a sentinel left in
an untouched month survives) and append a new month to the accounts' stored state rather than re-reading their
history (a sentinel in a stored account survives); at the end every table dbt built must equal a ``--full-refresh``
build of the same raw layer, row for row.
"""

from __future__ import annotations

import shutil
from datetime import date

import duckdb
import pytest
from scratch_warehouse import Scratch

END = date(2026, 10, 1)
MONTHS = "intermediate.int_client_usage_months_aggregated"
ACCOUNTS = "intermediate.int_accounts_summarised"


def _tables(con: duckdb.DuckDBPyConnection) -> dict[str, list]:
    """Every base table dbt builds (intermediate and marts), its rows sorted."""
    names = [
        r[0]
        for r in con.execute(
            "SELECT schema_name || '.' || table_name FROM duckdb_tables() WHERE schema_name IN ('intermediate', "
            "'marts') "
            "ORDER BY 1"
        ).fetchall()
    ]
    return {n: sorted(con.execute(f"SELECT * FROM {n}").fetchall(), key=repr) for n in names}


def _fingerprints(con: duckdb.DuckDBPyConnection) -> dict:
    return dict(
        con.execute(
            "SELECT snapshot_month, month_fingerprint FROM intermediate.int_usage_months_fingerprinted"
        ).fetchall()
    )


def _outstanding(con: duckdb.DuckDBPyConnection, month: date) -> float:
    return con.execute(f"SELECT sum(total_outstanding) FROM {MONTHS} WHERE snapshot_month = ?", [month]).fetchall()[0][
        0
    ]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    from dagster_project.tools.demo.generate import generate

    root = tmp_path_factory.mktemp("incremental")
    generated = root / "generated"
    generate(out_dir=generated, n_clients=150, months=4, seed=11, fmt="csv", end_month=END, progress=False)
    sc = Scratch(root / "wh")
    for f in generated.rglob("*.csv"):
        if f"{END:%Y%m}" not in f.name or f.parent.name == "clients":
            sc.write(f.parent.name, f.name, f.read_bytes())
    for source in ("clients", "credit_bureau", "product_usage"):
        sc.ingest(source)
    code, _, out = sc.dbt_build()
    assert code == 0, out
    yield sc, generated
    sc.close()


def _ingest(sc: Scratch) -> None:
    for source in ("credit_bureau", "product_usage"):
        assert all(not isinstance(v, Exception) for v in sc.ingest(source).values())


def test_a_correction_then_one_more_month_build_only_those_and_equal_a_rebuild(built) -> None:
    sc, generated = built
    months = sorted(_fingerprints(sc.con))
    assert len(months) == 3
    # 1. a corrected file of the first month: 5 accounts' balances halved; a sentinel in an untouched month
    first = sorted((generated / "product_usage").glob("*.csv"))[0]
    corrected = sc.con.execute(f"""SELECT * REPLACE (outstanding_balance / 2 AS outstanding_balance)
        FROM read_csv('{first}', header=true) ORDER BY account_id LIMIT 5""").df()
    corrected.to_csv(sc.landing / "product_usage" / f"{first.stem}_correction.csv", index=False, date_format="%Y-%m-%d")
    _ingest(sc)
    before, outstanding = _fingerprints(sc.con), _outstanding(sc.con, months[0])
    one_row = (
        f"WHERE snapshot_month = DATE '{months[1]}' AND client_key = (SELECT min(client_key) FROM {MONTHS} "
        f"WHERE snapshot_month = DATE '{months[1]}')"
    )
    sc.con.execute(f"UPDATE {MONTHS} SET month_fingerprint = 'sentinel' {one_row}")
    code, _, out = sc.dbt_build(command="run")
    assert code == 0, out
    assert sc.con.execute(f"SELECT snapshot_month FROM {MONTHS} WHERE month_fingerprint = 'sentinel'").fetchall() == [
        (months[1],)
    ]  # the untouched month was not built again
    sc.con.execute(f"UPDATE {MONTHS} SET month_fingerprint = ? {one_row}", [before[months[1]]])
    assert _outstanding(sc.con, months[0]) < outstanding  # the correction reached the corrected month
    corrected_fps = _fingerprints(sc.con)
    assert sorted(m for m, fp in corrected_fps.items() if before.get(m) != fp) == [months[0]]
    # 2. one more month: appended to the stored accounts (a sentinel first month of an account active in it survives)
    for f in generated.rglob(f"*{END:%Y%m}.csv"):
        if f.parent.name != "clients":
            sc.write(f.parent.name, f.name, f.read_bytes())
    _ingest(sc)
    query = f"""SELECT account_key, first_month FROM {ACCOUNTS} WHERE account_key IN
        (SELECT account_key FROM raw.product_usage WHERE snapshot_month = DATE '{END}') ORDER BY 1 LIMIT 1"""
    account, first_month = sc.con.execute(query).fetchall()[0]
    sc.con.execute(f"UPDATE {ACCOUNTS} SET first_month = DATE '2000-01-01' WHERE account_key = ?", [account])
    code, _, out = sc.dbt_build()
    assert code == 0, out
    assert sorted(m for m, fp in _fingerprints(sc.con).items() if corrected_fps.get(m) != fp) == [END]
    stored = sc.con.execute(
        f"SELECT first_month, last_month FROM {ACCOUNTS} WHERE account_key = ?", [account]
    ).fetchall()
    assert stored == [(date(2000, 1, 1), END)]  # appended to the stored row, not read again from all snapshots
    sc.con.execute(f"UPDATE {ACCOUNTS} SET first_month = ? WHERE account_key = ?", [first_month, account])
    # the models built on the accounts read the sentinel: build them again on the restored state
    code, _, out = sc.dbt_build(
        "--select", "int_accounts_summarised+", "--exclude", "int_accounts_summarised", command="run"
    )
    assert code == 0, out
    assert sc.con.execute(f"SELECT count(DISTINCT snapshot_month) FROM {MONTHS}").fetchall()[0][0] == 4
    incremental = _tables(sc.con)
    # 3. the same raw layer built from scratch
    copy = sc.root / "copy"
    shutil.copytree(sc.root / "build", copy / "build")
    rebuilt = Scratch(copy)
    try:
        code, _, out = rebuilt.dbt_build("--full-refresh", command="run")
        assert code == 0, out
        full = _tables(rebuilt.con)
    finally:
        rebuilt.close()
    assert set(incremental) == set(full) and len(full) >= 19
    assert [t for t in full if incremental[t] != full[t]] == []

"""Cost follows what is new: the incremental dbt models, advanced by a delivery, equal a rebuild from scratch.

A scratch warehouse (ingestion without Dagster, plain dbt; tests/scratch_warehouse.py) loads three months and is
built; then one more month arrives together with a corrected file of an older month, and dbt builds incrementally.
Every table dbt built must then equal a ``--full-refresh`` build of the same raw layer, row for row; and the
incremental run must have built only the changed months.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import duckdb
import pytest

from scratch_warehouse import Scratch

END = date(2026, 10, 1)


def _tables(con: duckdb.DuckDBPyConnection) -> dict[str, list]:
    """Every base table dbt builds (intermediate and marts), its rows sorted, with the build-only columns left out."""
    names = [r[0] for r in con.execute(
        "SELECT schema_name || '.' || table_name FROM duckdb_tables() WHERE schema_name IN ('intermediate', 'marts') "
        "ORDER BY 1").fetchall()]
    return {n: sorted(con.execute(f"SELECT * FROM {n}").fetchall(), key=repr) for n in names}


def _outstanding(con: duckdb.DuckDBPyConnection, month: date) -> float:
    return con.execute("SELECT sum(total_outstanding) FROM intermediate.int_client_usage_months_aggregated "
                       "WHERE snapshot_month = ?", [month]).fetchall()[0][0]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    from dagster_project.tools.demo.generate import generate

    root = tmp_path_factory.mktemp("incremental")
    generated = root / "generated"
    generate(out_dir=generated, n_clients=150, months=4, seed=11, fmt="csv", end_month=END, progress=False)
    sc = Scratch(root / "wh")
    last = f"{END:%Y%m}"
    for f in generated.rglob("*.csv"):
        if last not in f.name or f.parent.name == "clients":
            sc.write(f.parent.name, f.name, f.read_bytes())
    for source in ("clients", "credit_bureau", "product_usage"):
        sc.ingest(source)
    code, _, out = sc.dbt_build()
    assert code == 0, out
    yield sc, generated
    sc.close()


def test_one_more_month_and_a_corrected_month_build_only_those_and_equal_a_rebuild(built) -> None:
    sc, generated = built
    before = sc.con.execute("SELECT snapshot_month, month_fingerprint FROM intermediate.int_usage_months_fingerprinted "
                            "ORDER BY 1").fetchall()
    assert len(before) == 3
    # the next month's usage and bureau files, and a corrected file of the first month: 5 accounts' balances halved
    for f in generated.rglob(f"*{END:%Y%m}.csv"):
        if f.parent.name != "clients":
            sc.write(f.parent.name, f.name, f.read_bytes())
    first = sorted((generated / "product_usage").glob("*.csv"))[0]
    corrected = sc.con.execute(f"""SELECT * REPLACE (outstanding_balance / 2 AS outstanding_balance)
        FROM read_csv('{first}', header=true, all_varchar=false) ORDER BY account_id LIMIT 5""").df()
    path = sc.landing / "product_usage" / f"{first.stem}_correction.csv"
    corrected.to_csv(path, index=False, date_format="%Y-%m-%d")
    for source in ("credit_bureau", "product_usage"):
        assert all(not isinstance(v, Exception) for v in sc.ingest(source).values())
    # a sentinel in a month no delivery touched (one row's stored fingerprint): an incremental build leaves that
    # month's rows as they are, and the month's other rows still carry its current fingerprint
    untouched, untouched_fp = before[1]
    outstanding_before = _outstanding(sc.con, before[0][0])
    one_row = ("WHERE snapshot_month = DATE '{m}' AND client_key = (SELECT min(client_key) FROM "
               "intermediate.int_client_usage_months_aggregated WHERE snapshot_month = DATE '{m}')").format(m=untouched)
    sc.con.execute(f"UPDATE intermediate.int_client_usage_months_aggregated SET month_fingerprint = 'sentinel' {one_row}")
    code, results, out = sc.dbt_build()
    assert code == 0, out
    kept = sc.con.execute("SELECT snapshot_month FROM intermediate.int_client_usage_months_aggregated "
                          "WHERE month_fingerprint = 'sentinel'").fetchall()
    assert kept == [(untouched,)]  # the untouched month was not built again
    sc.con.execute(f"UPDATE intermediate.int_client_usage_months_aggregated SET month_fingerprint = ? {one_row}",
                   [untouched_fp])
    after = dict(sc.con.execute("SELECT snapshot_month, month_fingerprint FROM intermediate.int_usage_months_fingerprinted").fetchall())
    changed = sorted(m for m, fp in after.items() if dict(before).get(m) != fp)
    assert changed == [before[0][0], END]  # the corrected month and the new one
    built_months = sc.con.execute("SELECT count(DISTINCT snapshot_month) FROM intermediate.int_client_usage_months_aggregated").fetchall()[0][0]
    assert built_months == 4
    incremental = _tables(sc.con)
    copy = sc.root / "copy"
    shutil.copytree(sc.root / "build", copy / "build")
    rebuilt = Scratch(copy)
    try:
        code, _, out = rebuilt.dbt_build("--full-refresh", command="run")
        assert code == 0, out
        full = _tables(rebuilt.con)
    finally:
        rebuilt.close()
    assert set(incremental) == set(full)
    differing = [t for t in full if incremental[t] != full[t]]
    assert differing == []
    assert _outstanding(sc.con, before[0][0]) < outstanding_before  # the correction reached the corrected month

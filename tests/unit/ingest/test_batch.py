"""One GX validation per source and run (batch.prepare) gives every delivery the verdict it gets validated alone."""

from datetime import date
from pathlib import Path

import duckdb
import pytest

from dagster_project.defs.ingest import batch
from dagster_project.defs.ingest.landing import DeliveryRejected, ensure_raw_schema, pending_deliveries
from dagster_project.defs.ingest.loading import Context, ingest_delivery
from dagster_project.lib import audit
from tests.unit.ingest.test_bad_deliveries import CLIENT_COLS, KEY, USAGE_COLS, client, csv_text, usage


def _usage_file(month: str, n: int, start: int, bad: dict[int, dict] | None = None) -> str:
    return csv_text(USAGE_COLS, [usage(start + i, snapshot_month=month, **(bad or {}).get(i, {})) for i in range(n)])


# a month of clean rows, one bad row (quarantined), too many bad rows (rejected on counts), a header that lacks
# a column (rejected while staging), a header-only file, and a clean correction of an earlier month
DELIVERIES = {
    "01_clean.csv": _usage_file("2026-01-01", 150, 0),
    "02_one_bad_row.csv": _usage_file("2026-02-01", 150, 0, {7: {"product_code": "crypto_loan"}}),
    "03_many_bad_rows.csv": _usage_file("2026-03-01", 150, 0, {i: {"channel": "carrier_pigeon"} for i in range(6)}),
    "04_missing_column.csv": _usage_file("2026-04-01", 20, 0).replace(",channel", "", 1),
    "05_header_only.csv": USAGE_COLS + "\n",
    "06_correction.csv": _usage_file("2026-01-01", 30, 0, {i: {"days_past_due": "12"} for i in range(30)}),
}


def _zone(root: Path, deliveries: dict[str, str]) -> tuple[duckdb.DuckDBPyConnection, Context, list]:
    root.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(root / "build.duckdb"))
    ensure_raw_schema(con)
    ctx = Context(
        key=KEY,
        run_id="r",
        asset="raw_x",
        audit_dir=root / "audit",
        rejected_dir=root / "rejected",
        max_share=0.01,
        today=date(2026, 11, 26),
        staging_dir=root / "staging",
    )
    land = root / "landing"
    for source, files in {
        "clients": {"c.csv": csv_text(CLIENT_COLS, [client(i) for i in range(200)])},
        "product_usage": deliveries,
    }.items():
        for name, text in files.items():
            (land / source).mkdir(parents=True, exist_ok=True)
            (land / source / name).write_text(text)
    todo, _ = pending_deliveries(con, "clients", land)
    ingest_delivery(con, todo[0], ctx)
    todo, _ = pending_deliveries(con, "product_usage", land)
    return con, ctx, sorted(todo, key=lambda d: d.path.name)


def _ingest(con, ctx, todo, prepared: dict | None) -> dict[str, tuple]:
    out = {}
    for i, d in enumerate(todo):
        try:
            res = ingest_delivery(con, d, ctx, None if prepared is None else prepared[i])
            out[d.path.name] = ("loaded", res.rows_in_file, res.rows_loaded, res.rows_quarantined)
        except DeliveryRejected as e:
            out[d.path.name] = ("rejected", str(e))
    return out


def _evidence(con, root: Path) -> tuple:
    results = (
        duckdb.connect()
        .execute(
            f"SELECT source_file, suite, rule, success, unexpected_count, element_count "
            f"FROM {audit.read(root / 'audit', audit.DQ_RESULTS)} WHERE asset = 'raw_x' ORDER BY ALL"
        )
        .fetchall()
    )
    q = audit.read(root / "audit", audit.QUARANTINED)
    quarantined = (
        duckdb.connect().execute(f"SELECT source_file, rule, row_number, record_key FROM {q} ORDER BY ALL").fetchall()
        if q
        else []
    )
    rows = con.execute("SELECT * EXCLUDE (_ingested_at) FROM raw.product_usage ORDER BY ALL").fetchall()
    return results, quarantined, rows


def _alone_and_batched(tmp_path: Path, deliveries: dict[str, str], max_share: float = 0.01):
    runs = {}
    for how in ("alone", "batched"):
        root = tmp_path / how
        con, ctx, todo = _zone(root, deliveries)
        ctx.max_share = max_share
        prepared = batch.prepare(con, todo, ctx) if how == "batched" else None
        outcomes = _ingest(con, ctx, todo, prepared)
        ctx.close()
        runs[how] = (outcomes, _evidence(con, root), prepared, root)
    return runs


def test_batched_verdicts_equal_validating_each_delivery_alone(tmp_path: Path) -> None:
    runs = _alone_and_batched(tmp_path, DELIVERIES)
    (alone, ev_alone, _, _), (batched, ev_batched, prepared, root) = runs["alone"], runs["batched"]
    assert batched == alone
    assert alone["01_clean.csv"] == ("loaded", 150, 150, 0)
    assert alone["02_one_bad_row.csv"] == ("loaded", 150, 149, 1)
    assert alone["03_many_bad_rows.csv"][0] == "rejected" and "accepted:channel" in alone["03_many_bad_rows.csv"][1]
    assert alone["04_missing_column.csv"][0] == "rejected" and "missing_column" in alone["04_missing_column.csv"][1]
    assert alone["05_header_only.csv"] == ("loaded", 0, 0, 0)
    assert ev_batched == ev_alone  # the same audit results, quarantined rows and raw rows
    # one suite run covered the four staged deliveries with rows; the one rejected while staging has no scratch
    assert sum(p.suite is not None for p in prepared.values()) == 4 and prepared[3].rejected is not None
    assert not list((root / "staging").glob("product_usage_b*")), "scratch files are removed once loaded"


def test_a_batch_too_dirty_to_list_falls_back_to_each_delivery_alone(tmp_path: Path) -> None:
    # every row of every file breaks a rule: more unexpected rows than all budgets together (100 per file)
    dirty = {
        f"{m:02d}.csv": _usage_file(f"2026-{m:02d}-01", 150, 0, {i: {"channel": "fax"} for i in range(150)})
        for m in (1, 2)
    }
    runs = _alone_and_batched(tmp_path, dirty)
    assert runs["batched"][0] == runs["alone"][0]
    assert all(v[0] == "rejected" and "accepted:channel" in v[1] for v in runs["batched"][0].values())
    assert runs["batched"][1] == runs["alone"][1]
    assert all(p.suite is None and p.scratch is not None for p in runs["batched"][2].values())


@pytest.mark.parametrize("total,share,expected", [(10, 0.01, 100), (100_000, 0.01, 10_000), (0, 0.5, 100)])
def test_flag_budget(total: int, share: float, expected: int) -> None:
    assert batch.flag_budget(total, share) == expected

"""Property-based tests: no delivery can jam the pipeline.

Hypothesis generates valid deliveries from the contract (``contract_deliveries.py``), mutates them (types,
extremes, NaN/inf, huge and tiny numbers, Unicode, duplicated and missing keys, reordered, extra and missing
columns, empty files, truncated lines, unknown clients), drops each into one scratch warehouse built from a
good generated delivery set, and ingests it. Every outcome must be: loaded, loaded with exactly the bad rows
quarantined, or rejected with a clear error. Then ONE ``dbt build`` runs over everything that was accepted and
must pass; nothing of a rejected file may be in any table; no clear identifier may be in any message, table or
audit row. 36 examples (``EXAMPLES``: per mutation kind), derandomised (same examples on every run, no example
database): CI budget
3 minutes for the whole file (measured: see docs/quality.md).
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter

import duckdb
import pytest
from contract_deliveries import N_ROWS, Case, clear_ids, out_of_range, to_csv, valid_rows
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scratch_warehouse import Scratch, base_warehouse

from dagster_project.defs.ingest.contract import SOURCES, ranged_columns
from dagster_project.defs.ingest.landing import DeliveryRejected
from dagster_project.defs.ingest.loading import LoadOutcome
from dagster_project.lib import audit

# examples per mutation kind (36 in all); the value mutations get the most
EXAMPLES = {
    "valid": 3,
    "out_of_range": 5,
    "nasty_cell": 6,
    "unicode_text": 2,
    "missing_key": 2,
    "duplicate_key": 2,
    "reorder": 2,
    "extra_column": 2,
    "drop_column": 2,
    "header_only": 2,
    "zero_bytes": 1,
    "truncated": 3,
    "orphans": 3,
    "bom_crlf": 1,
}
KINDS = list(EXAMPLES)
OPTIONAL_IN_HEADER = {c.name for src in SOURCES.values() for c in src.columns if c.header_optional}
BASE_CLIENTS = 60
KNOWN = [f"CL{i:08d}" for i in range(1, BASE_CLIENTS + 1)]  # the generated base set's client ids
SEEN_IDS: set[str] = set()
OUTCOMES: Counter = Counter()  # (kind, outcome) over the examples, reported at the end
NASTY = st.one_of(
    st.sampled_from(
        [
            "1e40",
            "-1e40",
            "inf",
            "-inf",
            "nan",
            "NaN",
            "Infinity",
            "1.7976931348623157e308",
            "1e-320",
            "-0",
            "0x1F",
            "1_000",
            "1,000",
            " 12 ",
            "１２",
            "9" * 40,
            "null",
            "None",
            "12abc",
            "٣",
            "'",
            '"',
            "\\N",
            "2026-02-30",
            "9999-12-31",
            "0001-01-01",
            "31/12/2020",
            "'; DROP TABLE raw.clients; --",
        ]
    ),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=15),
)
UNICODE = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=30
)
KEY_COLUMNS = {
    "clients": ["client_id"],
    "credit_bureau": ["report_id"],
    "product_usage": ["account_id", "snapshot_month"],
}


@pytest.fixture(scope="module")
def wh(tmp_path_factory: pytest.TempPathFactory):
    sc = base_warehouse(tmp_path_factory.mktemp("prop"), clients=BASE_CLIENTS, months=2)
    giant = valid_rows("clients", 424242, KNOWN, n=1)[0] | {
        # ICBC-sized balance sheet and State Grid-sized revenue (contract.py: the ceiling's sources)
        "client_id": "CLGIANT00001",
        "total_assets": "44697000000000.00",
        "annual_revenue": "3864000000000.00",
        "registered_capital": "356400000000.00",
        "employee_count": "870000",
        "industry_code": "D4420",
    }
    sc.write("clients", "giant.csv", to_csv([c.name for c in SOURCES["clients"].columns], [giant]))
    res = sc.ingest("clients")["giant.csv"]
    assert isinstance(res, LoadOutcome) and res.rows_loaded == 1 and res.rows_quarantined == 0, res
    SEEN_IDS.add("CLGIANT00001")
    yield sc
    sc.close()


SALT = iter(range(1, 10**9))  # distinct rows per example (else most would repeat a file and be skipped by checksum)


@st.composite
def cases(draw, kind: str) -> Case:
    source = draw(
        st.sampled_from(
            ["credit_bureau", "product_usage"] if kind == "orphans" else ["clients", "credit_bureau", "product_usage"]
        )
    )
    rows = valid_rows(source, draw(st.integers(0, 10**6)) + 10**6 * next(SALT), KNOWN)
    header = [c.name for c in SOURCES[source].columns]
    rng = random.Random(draw(st.integers(0, 10**6)))
    r = draw(st.integers(0, N_ROWS - 1))
    case = Case(source, b"", kind, clear_ids=clear_ids(rows))
    if kind == "out_of_range":
        col = draw(st.sampled_from([c for c in ranged_columns(SOURCES[source])]))
        rows[r][col.name] = out_of_range(col, rng)
        case.bad_rows = case.must_quarantine = {r + 1}
    elif kind == "nasty_cell":
        cols = [c.name for c in SOURCES[source].kept if c.name not in ("client_id", "account_id")]
        rows[r][draw(st.sampled_from(cols))] = draw(NASTY)
        case.bad_rows, case.may_reject = {r + 1}, True  # e.g. a NUL byte or a lone quote: unreadable
    elif kind == "unicode_text":
        col = draw(st.sampled_from(["legal_name", "contact_email"] if source == "clients" else ["client_id"]))
        rows[r][col] = draw(UNICODE)
        case.bad_rows, case.orphans = {r + 1}, int(col == "client_id")
    elif kind == "missing_key":
        rows[r][draw(st.sampled_from(KEY_COLUMNS[source]))] = ""
        case.bad_rows = case.must_quarantine = {r + 1}
    elif kind == "duplicate_key":
        other = (r + 1 + draw(st.integers(0, N_ROWS - 2))) % N_ROWS
        for k in KEY_COLUMNS[source]:
            rows[other][k] = rows[r][k]
        case.bad_rows, case.may_reject = {r + 1, other + 1}, True  # 2 % of the rows > 1 %: rejected
        case.must_reject = "quarantine_share"
    elif kind == "reorder":
        rng.shuffle(header)
    elif kind == "extra_column":
        header.insert(rng.randint(0, len(header)), "unexpected_extra")
        rows[r]["unexpected_extra"] = draw(UNICODE)
    elif kind == "drop_column":  # a column every delivery must carry (v1.1's optional ones may be left out)
        header.remove(draw(st.sampled_from([c for c in header if c not in OPTIONAL_IN_HEADER])))
        case.must_reject = "missing_column"
    elif kind == "header_only":
        rows = []
    elif kind == "orphans":
        k = draw(st.integers(1, N_ROWS))
        for i in range(k):
            rows[i]["client_id"] = f"CLX{rng.randint(0, 10**9):09d}"
        case.orphans = k
        if k / N_ROWS > 0.2:
            case.must_reject = "orphan_share"
    data = to_csv(header, rows, "\r\n" if kind == "bom_crlf" else "\n")
    if kind == "bom_crlf":
        data = b"\xef\xbb\xbf" + data
    elif kind == "zero_bytes":
        data, case.must_reject = b"", "non_empty"
    elif kind == "truncated":
        cut = draw(st.integers(1, 40))
        data = data.rstrip(b"\n")[:-cut]
        case.bad_rows, case.may_reject = {N_ROWS}, True
    case.data = data
    case.clear_ids |= clear_ids(rows)
    return case


def _quarantined(sc: Scratch, file: str) -> list[int]:
    sql = audit.read(sc.root / "audit", audit.QUARANTINED)
    if sql is None:
        return []
    return [
        r[0]
        for r in duckdb.connect()
        .execute(f"SELECT DISTINCT row_number FROM {sql} WHERE source_file = ? ORDER BY 1", [file])
        .fetchall()
    ]


def _no_clear_id(text: str, ids: set[str]) -> None:
    leaked = [i for i in ids if i in text]
    assert not leaked, f"clear identifiers in output: {leaked[:3]}"


COUNTER = iter(range(10**6))


@pytest.mark.parametrize("kind", KINDS)
def test_every_delivery_loads_quarantines_exactly_its_bad_rows_or_is_rejected(wh: Scratch, kind: str) -> None:
    @settings(
        max_examples=EXAMPLES[kind],
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases(kind))
    def check(case: Case) -> None:
        _check_one(wh, case)

    check()


def _check_one(wh: Scratch, case: Case) -> None:
    name = f"p{next(COUNTER):04d}_{case.kind}.csv"
    wh.write(case.source, name, case.data)
    SEEN_IDS.update(case.clear_ids)
    out = wh.ingest(case.source).get(name)  # any exception other than DeliveryRejected fails the test
    if out is None:
        OUTCOMES[(case.kind, "skipped")] += 1
        return  # same content as an earlier example: skipped by checksum
    OUTCOMES[
        (
            case.kind,
            "rejected"
            if isinstance(out, DeliveryRejected)
            else "quarantined"
            if out.rows_quarantined
            else "held"
            if out.rows_held
            else "loaded",
        )
    ] += 1
    if isinstance(out, DeliveryRejected):
        msg = str(out)
        assert case.must_reject or case.may_reject, f"{case.kind}: unexpected rejection: {msg}"
        if case.must_reject:
            assert f"rule '{case.must_reject}'" in msg, msg
        assert name in msg and "rule '" in msg
        report = (wh.root / "rejected" / f"{name}.error.json").read_text()
        _no_clear_id(msg + report, case.clear_ids)
        return
    assert case.must_reject is None, f"{case.kind}: should have been rejected ({case.must_reject})"
    q = _quarantined(wh, name)
    assert set(q) <= case.bad_rows, f"{case.kind}: rows {q} quarantined, only {case.bad_rows} were bad"
    if case.must_quarantine:
        assert set(q) == case.must_quarantine, f"{case.kind}: expected {case.must_quarantine} quarantined, got {q}"
    if not case.bad_rows and not case.orphans:
        assert out.rows_quarantined == 0 and out.rows_held == 0, f"{case.kind}: valid delivery lost rows"
    assert out.rows_held <= case.orphans + len(case.bad_rows)
    if case.orphans and case.kind == "orphans":
        assert out.rows_held == case.orphans
    assert out.rows_loaded + out.rows_held + out.rows_quarantined == out.rows_in_file
    _no_clear_id(" ".join(out.warnings), case.clear_ids)


def test_dbt_build_passes_on_everything_accepted(wh: Scratch) -> None:
    """One dbt build over the base set plus every accepted mutated delivery: no later stage fails."""
    rc, results, tail = wh.dbt_build()
    failed = [
        (r["unique_id"], r.get("message")) for r in results.get("results", []) if r["status"] in ("fail", "error")
    ]
    assert rc == 0 and not failed, f"dbt build failed: {failed[:5]}\n{tail[-2000:]}"
    assert wh.con.execute("SELECT count(*) FROM marts.dim_client WHERE annual_revenue > 1e12").fetchone()[0] >= 1


def test_nothing_of_a_rejected_file_and_no_clear_identifier_anywhere(wh: Scratch) -> None:
    print(
        "\nproperty-test outcomes (kind, outcome): count\n"
        + "\n".join(f"  {k}: {v}" for k, v in sorted(OUTCOMES.items()))
    )
    kinds = {o for _, o in OUTCOMES}
    assert {"loaded", "quarantined", "rejected", "held"} <= kinds, OUTCOMES
    assert wh.rejected_files, "the examples include rejected files"
    tables = [
        f"{s}.{t}"
        for s, t in wh.con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE schema_name IN ('raw', 'marts', 'intermediate')"
        ).fetchall()
    ]
    files = list(wh.rejected_files)
    for t in tables:
        cols = [r[0] for r in wh.con.execute(f"DESCRIBE {t}").fetchall()]
        for lineage in ("_source_file", "source_file"):
            if lineage in cols:
                n = wh.con.execute(
                    f"SELECT count(*) FROM {t} WHERE {lineage} IN (SELECT unnest(?))", [files]
                ).fetchone()[0]
                assert n == 0, f"{t} holds {n} rows of rejected files"
    dump = wh.root / "dump"
    dump.mkdir(exist_ok=True)
    for t in tables:
        wh.con.execute(f"COPY (SELECT * FROM {t}) TO '{dump / (t + '.csv')}' (HEADER)")
    for table, reader in audit.tables(wh.root / "audit").items():
        duckdb.connect().execute(f"COPY (SELECT * FROM {reader}) TO '{dump / ('audit_' + table + '.csv')}' (HEADER)")
    text = "\n".join(p.read_text(errors="replace") for p in dump.iterdir())
    text += "\n".join(p.read_text() for p in (wh.root / "rejected").glob("*.json")) + "\n".join(wh.messages)
    ids = {i for i in SEEN_IDS if not i.isdigit()} | {i for i in SEEN_IDS if i.isdigit() and len(i) >= 11}
    tokens = set(re.split(r"[,\s\"'|:;()\[\]{}]+", text))
    assert not ids & tokens, f"clear identifiers in tables/audit/messages: {sorted(ids & tokens)[:3]}"
    _no_clear_id(text, set(sorted(ids)[:: max(1, len(ids) // 300)]))  # and as substrings, for a sample of 300
    assert json.dumps(sorted(ids))  # the check ran over the ids of every example

"""HMAC pseudonyms: the Python reference against RFC 4231, and the DuckDB SQL form against the reference."""

import duckdb
import pytest

from dagster_project.lib.pseudonymise import hmac_sql, pseudonymise

# RFC 4231, HMAC-SHA-256 test cases 1, 2, 6 and 7 (keys and data as given there).
RFC4231 = [
    (b"\x0b" * 20, b"Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (b"Jefe", b"what do ya want for nothing?", "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    (
        b"\xaa" * 131,
        b"Test Using Larger Than Block-Size Key - Hash Key First",
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
    ),
    (
        b"\xaa" * 131,
        b"This is a test using a larger than block-size key and a larger than block-size data. The key needs to be "
        b"hashed before being used by the HMAC algorithm.",
        "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
    ),
]


@pytest.mark.parametrize("key,data,expected", RFC4231)
def test_python_hmac_matches_rfc4231(key: bytes, data: bytes, expected: str) -> None:
    assert pseudonymise(key, data.decode("ascii")) == expected


@pytest.mark.parametrize("key,data,expected", RFC4231)
def test_sql_hmac_matches_rfc4231(key: bytes, data: bytes, expected: str) -> None:
    con = duckdb.connect()
    got = con.execute(f"SELECT {hmac_sql(key, '$v')}", {"v": data.decode("ascii")}).fetchone()[0]
    assert got == expected


def test_sql_matches_python_on_unicode_and_null() -> None:
    con = duckdb.connect()
    values = ["CL00012345", "客户-001", "a'b\"c", ""]
    con.execute("CREATE TABLE t (v VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?)", [[v] for v in values] + [[None]])
    got = dict(con.execute(f"SELECT v, {hmac_sql('s3cret', 'v')} FROM t").fetchall())
    assert got[None] is None
    for v in values:
        assert got[v] == pseudonymise("s3cret", v)
    assert pseudonymise("s3cret", "CL1") != pseudonymise("other", "CL1")

"""Keyed pseudonyms for client and account identifiers.

``client_key = lowercase hex(HMAC-SHA256(key, UTF-8 client_id))`` (RFC 2104). The Python function is the
reference; :func:`hmac_sql` builds the same HMAC as a DuckDB SQL expression so that ingestion can
pseudonymise inside the read query, with no Python row loop and no clear id ever written to a table.
"""

from __future__ import annotations

import hashlib
import hmac

_BLOCK = 64  # SHA-256 block size in bytes


def pseudonymise(key: str | bytes, value: str) -> str:
    """Lowercase hex HMAC-SHA256 of the UTF-8 ``value`` under ``key``."""
    k = key.encode("utf-8") if isinstance(key, str) else key
    return hmac.new(k, value.encode("utf-8"), hashlib.sha256).hexdigest()


def hmac_pads(key: str | bytes) -> tuple[bytes, bytes]:
    """The inner and outer padded keys of RFC 2104 (K xor ipad, K xor opad)."""
    k = key.encode("utf-8") if isinstance(key, str) else key
    if len(k) > _BLOCK:
        k = hashlib.sha256(k).digest()
    k = k.ljust(_BLOCK, b"\x00")
    return bytes(b ^ 0x36 for b in k), bytes(b ^ 0x5C for b in k)


def _blob_literal(data: bytes) -> str:
    return "unhex('" + data.hex() + "')"


def hmac_sql(key: str | bytes, column_sql: str) -> str:
    """A DuckDB expression computing :func:`pseudonymise` of ``column_sql`` (NULL stays NULL).

    The padded keys are embedded as hex literals in the query text; callers must never log the SQL.
    """
    ipad, opad = hmac_pads(key)
    inner = f"unhex(sha256({_blob_literal(ipad)} || encode({column_sql})))"
    return f"sha256({_blob_literal(opad)} || {inner})"

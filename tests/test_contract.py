"""Landing contract v1: column lists, PII handling and message masking."""

from dagster_project.config import DEMO_PII_KEY, key_id_for
from dagster_project.contract import PII_COLUMNS, SOURCES, mask, missing_columns, unexpected_columns


def test_every_source_has_required_keys_and_types() -> None:
    assert set(SOURCES) == {"clients", "credit_bureau", "product_usage", "review_decisions"}
    for src in SOURCES.values():
        stored = {c.stored_name for c in src.kept}
        assert set(src.key) <= stored, src.name
        assert all(c.type in {"VARCHAR", "BIGINT", "DOUBLE", "DATE", "TIMESTAMP"} for c in src.columns)


def test_personal_data_is_never_kept_in_clear() -> None:
    clients = SOURCES["clients"]
    assert {c.name for c in clients.columns if c.pii == "drop"} == {
        "legal_name", "registration_no", "contact_email", "contact_phone"}
    for src in SOURCES.values():
        kept = {c.stored_name for c in src.kept}
        assert "client_id" not in kept and "account_id" not in kept
        assert not kept & {"legal_name", "registration_no", "contact_email", "contact_phone"}
    assert PII_COLUMNS["product_usage"] == ("account_id", "client_id")


def test_missing_and_unexpected_columns() -> None:
    src = SOURCES["credit_bureau"]
    header = [c.name for c in src.columns if c.name != "bureau_score"] + ["extra"]
    assert missing_columns(src, header) == ["bureau_score"]
    assert unexpected_columns(src, header) == ["extra"]
    # A semicolon-delimited file reads as one column: every contract column is missing.
    assert len(missing_columns(src, [";".join(c.name for c in src.columns)])) == len(src.columns)


def test_mask_hides_content_keeps_shape() -> None:
    assert mask("1,234.5") == "9,999.9"
    assert mask("Acme Ltd") == "xxxx xxx"
    assert mask(None) == "NULL"
    assert len(mask("x" * 100)) == 20


def test_key_id_is_stable_and_does_not_reveal_key() -> None:
    kid = key_id_for(DEMO_PII_KEY)
    assert kid == key_id_for(DEMO_PII_KEY) and len(kid) == 16
    assert DEMO_PII_KEY not in kid and kid != key_id_for("another key")

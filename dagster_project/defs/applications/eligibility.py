"""The catalogue's eligibility rules as SQL: one (client x product) relation the recommendations and their check share.

The rules are those of ``recommend.eligibility_failures`` (the per-client specification, documented in
docs/applications.md); ``tests/unit/applications/test_recommend_population.py`` runs both over every combination of size
class, firm stage, risk class, rating grade and catalogue product and requires the same failures.
"""

from __future__ import annotations

from dagster_project.defs.applications import recommend as rc

CATALOGUE_TABLE = "reference.product_catalogue"


def _case(col: str, ranks: dict[str, int]) -> str:
    return "CASE " + col + "".join(f" WHEN '{k}' THEN {v}" for k, v in ranks.items()) + " END"


def _listed(value: str, pipe_list: str) -> str:
    """``value`` is one of the non-empty entries of a pipe-separated list (NULL value or list: no)."""
    return (
        f"(coalesce({value}, '') <> '' AND "
        f"coalesce(list_contains(string_split(coalesce({pipe_list}, ''), '|'), {value}), false))"
    )


def products_list() -> str:
    return "[" + ", ".join(f"'{p}'" for p in rc.PRODUCTS) + "]"


def eligibility_sql(states: str, catalogue: str = CATALOGUE_TABLE) -> str:
    """Every client of ``states`` x every catalogue product, with why the client may not have it.

    ``states`` is a relation with client_key, size_class, firm_stage, industry_risk_class, rating_grade and one
    held_<product> column per product of ``recommend.PRODUCTS`` (``as_of.client_state_sql``); it may carry
    ``pos`` (the client's row in the states frame). Columns: client_key, pos (NULL when ``states`` has none),
    product_code, product_pos (its column in ``recommend.PRODUCTS``, 0-based; NULL for a product outside it),
    held, failures (comma-separated codes of ``recommend.ELIGIBILITY_TEXT``; '' = eligible).
    """
    grade = "s.effective_grade"
    size, min_size = _case("s.size_class", rc.SIZE_RANK), _case("p.min_size_class", rc.SIZE_RANK)
    order, min_order = _case(grade, rc.GRADE_ORDER), _case("p.min_rating_grade", rc.GRADE_ORDER)
    floor = rc.GRADE_ORDER[rc.HIGH_RISK_FLOOR_GRADE]
    graded = ", ".join(f"'{g}'" for g in rc.GRADE_ORDER)
    held = "CASE p.product_code " + " ".join(f"WHEN '{q}' THEN s.held_{q}" for q in rc.PRODUCTS) + " ELSE false END"
    return f"""
SELECT s.client_key, s.pos, p.product_code, list_position({products_list()}, p.product_code) - 1 AS product_pos,
    coalesce({held}, false) AS held,
    concat_ws(',',
        CASE WHEN {size} IS NULL THEN CASE WHEN p.min_size_class <> 'micro' THEN 'SIZE_UNKNOWN' END
             WHEN {size} < {min_size} THEN 'SIZE_BELOW_MIN' END,
        CASE WHEN {grade} = 'D' THEN 'RATING_DEFAULT' WHEN {order} > {min_order} THEN 'RATING_BELOW_MIN' END,
        CASE WHEN {_listed("s.industry_risk_class", "p.excluded_risk_classes")} THEN 'RISK_CLASS_EXCLUDED' END,
        CASE WHEN s.industry_risk_class = 'high' AND NOT coalesce(p.secured, false) AND {order} > {floor}
             THEN 'HIGH_RISK_FLOOR' END,
        CASE WHEN NOT {_listed("s.firm_stage", "p.firm_stages_served")} THEN 'STAGE_NOT_SERVED' END
    ) AS failures
FROM (
    SELECT *, CASE WHEN rating_grade IN ({graded}) THEN rating_grade ELSE '{rc.UNRATED_ASSUMED_GRADE}' END
        AS effective_grade
    FROM {states}
) AS s
CROSS JOIN {catalogue} AS p"""


def ineligible_recommendations_sql(recommendations: str, states_sql: str) -> str:
    """Recommended products the client may not have or already holds, one row each (no row: the check passes).

    ``states_sql`` is the client-state query the recommendations were made from (as of the build's month); the
    states are computed once, as a CTE. Columns: client_key, product_code, problem.
    """
    return f"""
WITH st AS ({states_sql}),
el AS ({eligibility_sql("(SELECT *, NULL::BIGINT AS pos FROM st)")})
SELECT r.client_key, r.product_code,
    CASE WHEN e.client_key IS NULL THEN 'unknown client or product'
         ELSE concat_ws(',', nullif(e.failures, ''), CASE WHEN e.held THEN 'ALREADY_HELD' END) END AS problem
FROM {recommendations} AS r
LEFT JOIN el AS e ON e.client_key = r.client_key AND e.product_code = r.product_code
WHERE r.product_code IS NOT NULL AND (e.client_key IS NULL OR e.failures <> '' OR e.held)
ORDER BY r.client_key, r.product_code"""

"""Product recommendations: eligibility rules, playbook, learned propensity, reason codes, evaluation maths.

Pure functions only (no database, no Dagster): ``recommend_assets.py`` feeds them client rows computed in
DuckDB. Each rule has a per-client form (``eligibility_failures``, ``playbook_codes``, ``reason_codes``: the
specification, what unit tests read) and a whole-population form over arrays (``recommend_population.py``: what
the assets run, no Python loop per client). Eligibility at scale is SQL
(``eligibility.py``), tested against ``eligibility_failures``. The rules are documented in ``docs/applications.md``;
unit tests are in ``tests/unit/applications/``.

Score of a product for a client (only for products the client does not hold and is ELIGIBLE for)::

    score = W_PEERS x peer_share + W_PLAYBOOK x playbook_fit + W_POPULARITY x popularity

``peer_share`` is the learned propensity: the distance-weighted share of the client's K nearest
neighbours (scikit-learn ``NearestNeighbors`` on standardised firmographics, rating, usage and product
holdings; only existing customers are neighbours) that hold the product. ``playbook_fit`` is 1 when a
playbook rule targets the product at this client. ``popularity`` (share of customers holding the product)
only breaks ties.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

PRODUCTS: tuple[str, ...] = (
    "term_loan",
    "revolving_credit",
    "project_finance",
    "trade_finance",
    "ip_pledge_loan",
    "equipment_leasing",
    "supply_chain_finance",
    "startup_credit_loan",
)
SIZE_RANK: dict[str, int] = {"micro": 1, "small": 2, "medium": 3, "large": 4}
GRADE_ORDER: dict[str, int] = {f"R{i}": i for i in range(1, 9)} | {"D": 9}
UNRATED_ASSUMED_GRADE = "R6"  # unrated clients are assessed as grade R6 (fair) and flagged
HIGH_RISK_FLOOR_GRADE = "R3"  # no unsecured product for a `high` risk-class industry below R3
TOP_N = 3
W_PEERS, W_PLAYBOOK, W_POPULARITY = 1.0, 0.35, 0.05
K_NEIGHBOURS = 30
MAX_POOL_PER_BLOCK = 10_000  # neighbours of a block are searched among at most this many of its customers

# Rule code -> text an RM can read. Eligibility failures are not published (ineligible products are never
# recommended) but are used in tests and in the evaluation's "eligible" baseline.
REASON_TEXT: dict[str, str] = {
    "PEERS_HOLD_STRONG": "held by {pct}% of the {k} most similar clients (strong peer adoption)",
    "PEERS_HOLD": "held by {pct}% of the {k} most similar clients",
    "PLAYBOOK_LARGE_MANUFACTURER_LONG_TERM": "playbook: long-term financing for large manufacturers",
    "PLAYBOOK_TECH_SME_IP_PLEDGE": "playbook: IP-pledge financing for technology SMEs",
    "PLAYBOOK_STARTUP_CREDIT": "playbook: low-threshold credit loan for start-ups",
    "SECURED_FOR_HIGH_RISK_INDUSTRY": "secured product for a high risk-class industry",
    "UNRATED_ASSUMED_R6": "no bureau rating yet: assessed as grade R6, rating needed before approval",
    "POPULAR_PRODUCT": "widely held product (popularity)",
}
ELIGIBILITY_TEXT: dict[str, str] = {
    "SIZE_BELOW_MIN": "size class below the product's minimum",
    "SIZE_UNKNOWN": "size class unknown",
    "RATING_BELOW_MIN": "rating grade worse than the product's floor",
    "RATING_DEFAULT": "client in default grade D",
    "RISK_CLASS_EXCLUDED": "industry risk class excluded by the catalogue",
    "HIGH_RISK_FLOOR": "unsecured product for a high risk-class industry below R3",
    "STAGE_NOT_SERVED": "firm stage not served by the product",
}


@dataclass(frozen=True)
class Product:
    """One row of ``reference.product_catalogue``."""

    product_code: str
    secured: bool
    min_size_class: str
    min_rating_grade: str
    excluded_risk_classes: frozenset[str]
    firm_stages_served: frozenset[str]
    tenor_class: str = "short"

    @classmethod
    def from_row(cls, row: Mapping[str, object]) -> Product:
        def split(v: object) -> frozenset[str]:
            return frozenset(s for s in str(v or "").split("|") if s and str(v) != "None")

        return cls(
            product_code=str(row["product_code"]),
            secured=bool(row["secured"]),
            min_size_class=str(row["min_size_class"]),
            min_rating_grade=str(row["min_rating_grade"]),
            excluded_risk_classes=split(row.get("excluded_risk_classes")),
            firm_stages_served=split(row["firm_stages_served"]),
            tenor_class=str(row.get("tenor_class", "short")),
        )


@dataclass(frozen=True)
class ClientProfile:
    """The dim_client attributes the rules read (as of the scoring date)."""

    size_class: str  # large, medium, small, micro, unknown
    firm_stage: str  # startup, growth, established, unknown
    technology_firm: bool
    industry_risk_class: str  # standard, elevated, high, unknown
    rating_grade: str  # R1..R8, D, unrated
    industry_section: str | None = None
    is_customer: bool = True  # False for prospects


def effective_grade(rating_grade: str) -> str:
    """Grade used by the rules: unrated clients are assessed as UNRATED_ASSUMED_GRADE."""
    return rating_grade if rating_grade in GRADE_ORDER else UNRATED_ASSUMED_GRADE


def eligibility_failures(product: Product, client: ClientProfile) -> list[str]:
    """Catalogue and policy rules the client fails for ``product``; empty list = eligible.

    Catalogue: size class at or above min_size_class; grade at or better than min_rating_grade (D never
    eligible; unrated assessed as R6); industry_risk_class not in excluded_risk_classes; firm stage in
    firm_stages_served. Policy floor: no unsecured product for a `high` risk-class industry below R3.
    """
    fails: list[str] = []
    if client.size_class not in SIZE_RANK:
        if product.min_size_class != "micro":
            fails.append("SIZE_UNKNOWN")
    elif SIZE_RANK[client.size_class] < SIZE_RANK[product.min_size_class]:
        fails.append("SIZE_BELOW_MIN")
    grade = effective_grade(client.rating_grade)
    if grade == "D":
        fails.append("RATING_DEFAULT")
    elif GRADE_ORDER[grade] > GRADE_ORDER[product.min_rating_grade]:
        fails.append("RATING_BELOW_MIN")
    if client.industry_risk_class in product.excluded_risk_classes:
        fails.append("RISK_CLASS_EXCLUDED")
    if (
        client.industry_risk_class == "high"
        and not product.secured
        and GRADE_ORDER[grade] > GRADE_ORDER[HIGH_RISK_FLOOR_GRADE]
    ):
        fails.append("HIGH_RISK_FLOOR")
    if client.firm_stage not in product.firm_stages_served:
        fails.append("STAGE_NOT_SERVED")
    return fails


def is_eligible(product: Product, client: ClientProfile) -> bool:
    return not eligibility_failures(product, client)


def _isin(value: Any, values: tuple[str, ...]) -> Any:
    """``value in values`` for one client, elementwise for a pandas column."""
    return value.isin(values) if hasattr(value, "isin") else value in values


def is_large_manufacturer(client: Any) -> Any:
    return (client.size_class == "large") & (client.industry_section == "C")


def is_tech_sme(client: Any) -> Any:
    return client.technology_firm & _isin(client.size_class, ("micro", "small", "medium"))


def is_startup(client: Any) -> Any:
    return client.firm_stage == "startup"


# (code, products it targets, who): one table for the per-client and the whole-population form. The predicates take
# a ClientProfile or a DataFrame of client states (then they return a boolean column).
PLAYBOOK: tuple[tuple[str, tuple[str, ...], Callable[[Any], Any]], ...] = (
    ("PLAYBOOK_LARGE_MANUFACTURER_LONG_TERM", ("term_loan", "project_finance"), is_large_manufacturer),
    ("PLAYBOOK_TECH_SME_IP_PLEDGE", ("ip_pledge_loan",), is_tech_sme),
    ("PLAYBOOK_STARTUP_CREDIT", ("startup_credit_loan",), is_startup),
)


def playbook_codes(product_code: str, client: ClientProfile) -> list[str]:
    """Playbook rules that target ``product_code`` at this client."""
    return [code for code, targets, who in PLAYBOOK if product_code in targets and who(client)]


def advisory_recommended(client: ClientProfile) -> bool:
    """Tailored financial advisory (a service, not a catalogue product): established firms, not in default.

    Rule: firm_stage `established` and size class large or medium, rating not D (prospects included:
    advisory is a door-opener).
    """
    return (
        client.firm_stage == "established" and client.size_class in ("large", "medium") and client.rating_grade != "D"
    )


def reason_codes(product: Product, client: ClientProfile, peer_share: float, popularity: float) -> list[str]:
    """Why ``product`` is recommended, strongest first (codes of :data:`REASON_TEXT`)."""
    codes = []
    if peer_share >= 0.5:
        codes.append("PEERS_HOLD_STRONG")
    elif peer_share >= 0.15:
        codes.append("PEERS_HOLD")
    codes += playbook_codes(product.product_code, client)
    if client.industry_risk_class == "high" and product.secured:
        codes.append("SECURED_FOR_HIGH_RISK_INDUSTRY")
    if not codes or (popularity >= 0.3 and peer_share < 0.15):
        codes.append("POPULAR_PRODUCT")
    if client.rating_grade not in GRADE_ORDER:
        codes.append("UNRATED_ASSUMED_R6")
    return codes


def share_percent(peer_share: float) -> int:
    """The peer share in whole per cent as the texts show it (round half to even, as ``np.rint``)."""
    return int(round(peer_share * 100))


def reason_text(codes: Sequence[str], peer_share: float, k: int = K_NEIGHBOURS) -> str:
    """One readable sentence for the RM from the reason codes."""
    parts = [REASON_TEXT[c].format(pct=share_percent(peer_share), k=k) for c in codes]
    text = "; ".join(parts)
    return text[:1].upper() + text[1:] if text else ""


def score(peer_share: float, playbook_fit: bool, popularity: float) -> float:
    return W_PEERS * peer_share + W_PLAYBOOK * float(playbook_fit) + W_POPULARITY * popularity


def rank_products(
    candidates: Mapping[str, float], held: set[str], eligible: set[str] | None = None, n: int = TOP_N
) -> list[str]:
    """Top ``n`` product codes by score among products not held (and eligible, if given); ties by code."""
    pool = [(p, s) for p, s in candidates.items() if p not in held and (eligible is None or p in eligible)]
    return [p for p, _ in sorted(pool, key=lambda ps: (-ps[1], ps[0]))[:n]]


def popularity_ranking(
    popularity: Mapping[str, float], held: set[str], eligible: set[str] | None = None, n: int = TOP_N
) -> list[str]:
    """The popularity baseline: the ``n`` most widely held products the client does not hold."""
    return rank_products(popularity, held, eligible, n)


def hit_at_k(recommended: Sequence[str], adopted: set[str], k: int = TOP_N) -> bool:
    """True when one of the first ``k`` recommendations was adopted."""
    return bool(set(recommended[:k]) & adopted)


def bootstrap_ci(
    values: Sequence[float] | np.ndarray, n_boot: int = 2000, alpha: float = 0.05, seed: int = 20261126
) -> tuple[float, float, float]:
    """(mean, lower, upper): percentile bootstrap confidence interval of the mean (seeded, reproducible).

    A resample of n units is drawn as the counts of each distinct value (one multinomial draw of n over the
    distinct values' shares): the same distribution as drawing n unit indices, in memory n_boot x distinct values
    instead of n_boot x n. Hits and paired differences of hits have two or three distinct values, so a million
    evaluated clients cost what a hundred do.
    """
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    distinct, counts = np.unique(x, return_counts=True)
    draws = rng.multinomial(x.size, counts / x.size, size=n_boot)
    means = draws @ distinct / x.size
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(x.mean()), float(lo), float(hi)


def paired_bootstrap_diff(
    a: Sequence[float], b: Sequence[float], n_boot: int = 2000, alpha: float = 0.05, seed: int = 20261126
) -> tuple[float, float, float]:
    """Mean of a - b with a percentile bootstrap interval over paired units (same clients resampled)."""
    return bootstrap_ci(np.asarray(a, dtype=float) - np.asarray(b, dtype=float), n_boot, alpha, seed)


def bounded(members: np.ndarray, cap: int = MAX_POOL_PER_BLOCK) -> np.ndarray:
    """At most ``cap`` of ``members``, evenly spread over them (all of them when there are fewer)."""
    if len(members) <= cap:
        return members
    return members[np.linspace(0, len(members) - 1, cap).round().astype(np.int64)]


def nearest(
    pool_x: np.ndarray,
    query_x: np.ndarray,
    kk: int,
    block_keys: Sequence[Sequence[int]] = (),
    min_block: int = 0,
    max_pool: int = MAX_POOL_PER_BLOCK,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``kk`` nearest pool rows of every query row (distances, pool indices) among the rows of its block.

    All-pairs distances over the whole population are quadratic (1 M clients: hours; a tree index is slower
    still in these ~50 dimensions). ``block_keys`` are groups of columns, coarsest first (e.g. the one-hot
    industry columns, then size, then firm stage): rows with equal values on all groups form a block and a
    query's neighbours are searched among its block's pool rows. A block with fewer than
    ``max(kk, min_block)`` pool rows is searched at the next coarser level, and the coarsest ones in the whole
    pool. A block's pool is bounded to ``max_pool`` rows (:func:`bounded`), so the time grows with the number of
    queries x ``max_pool`` at worst, never with the square of the population or of its largest block.
    """
    from sklearn.neighbors import NearestNeighbors

    dist = np.zeros((len(query_x), kk))
    idx = np.zeros((len(query_x), kk), dtype=np.int64)
    todo = np.ones(len(query_x), dtype=bool)
    need = max(kk, min_block)
    for level in range(len(block_keys), 0, -1):
        cols = [c for group in block_keys[:level] for c in group]
        if not cols or not todo.any():
            continue
        open_q = np.flatnonzero(todo)
        keys, block = np.unique(np.vstack([pool_x[:, cols], query_x[open_q][:, cols]]), axis=0, return_inverse=True)
        block = block.ravel()
        pool_block, query_block = block[: len(pool_x)], np.full(len(query_x), -1)
        query_block[open_q] = block[len(pool_x) :]
        order = np.argsort(pool_block, kind="stable")
        starts = np.searchsorted(pool_block[order], np.arange(len(keys) + 1))
        for b in np.unique(query_block[open_q]):
            members = bounded(order[starts[b] : starts[b + 1]], max_pool)
            if len(members) < need:
                continue
            q = np.flatnonzero(query_block == b)
            d, i = NearestNeighbors(n_neighbors=kk).fit(pool_x[members]).kneighbors(query_x[q])
            dist[q], idx[q], todo[q] = d, members[i], False
    if todo.any():
        members = bounded(np.arange(len(pool_x)), max(max_pool, kk))
        d, i = NearestNeighbors(n_neighbors=kk).fit(pool_x[members]).kneighbors(query_x[todo])
        dist[todo], idx[todo] = d, members[i]
    return dist, idx


def peer_shares(
    pool_x: np.ndarray,
    pool_holdings: np.ndarray,
    query_x: np.ndarray,
    query_in_pool: np.ndarray | None = None,
    k: int = K_NEIGHBOURS,
    block_keys: Sequence[Sequence[int]] = (),
    min_block: int = 0,
) -> np.ndarray:
    """Learned propensity: distance-weighted share of each query row's k nearest pool rows holding each product.

    ``pool_x``/``query_x`` are standardised feature matrices, ``pool_holdings`` a 0/1 (pool x products)
    matrix. ``query_in_pool[i]`` is the pool row of query i (or -1): a client is never its own neighbour.
    ``block_keys``: column groups the neighbour search blocks on, coarsest first (:func:`nearest`).
    """
    if len(pool_x) == 0 or len(query_x) == 0:
        return np.zeros((len(query_x), pool_holdings.shape[1] if pool_holdings.ndim == 2 else len(PRODUCTS)))
    kk = min(k + 1, len(pool_x))
    dist, idx = nearest(pool_x, query_x, kk, block_keys, min_block)
    if query_in_pool is None:
        query_in_pool = np.full(len(query_x), -1)
    self_mask = idx == query_in_pool[:, None]
    # drop self (or the farthest neighbour when self is absent) so that exactly k neighbours remain
    keep = ~self_mask
    no_self = ~self_mask.any(axis=1)
    keep[no_self, kk - 1] = kk <= k  # only when fewer than k+1 pool rows exist keep the last one
    w = np.where(keep, 1.0 / (1.0 + dist), 0.0)
    w /= np.maximum(w.sum(axis=1, keepdims=True), 1e-12)
    return np.einsum("qk,qkp->qp", w, pool_holdings[idx].astype(float))


def standardise(x: np.ndarray, ref: np.ndarray | None = None) -> np.ndarray:
    """Columns scaled to mean 0 / sd 1 on ``ref`` (default ``x``); NaN -> 0 (the mean)."""
    ref = x if ref is None else ref
    mu = np.nanmean(ref, axis=0)
    sd = np.nanstd(ref, axis=0)
    sd = np.where(~np.isfinite(sd) | (sd == 0), 1.0, sd)
    z = (x - np.where(np.isfinite(mu), mu, 0.0)) / sd
    return np.nan_to_num(z, nan=0.0)

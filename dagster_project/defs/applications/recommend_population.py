"""The recommendation rules over every client at once: arrays in, arrays out, no Python loop per client.

Each function is the whole-population form of a per-client rule of ``recommend.py`` (the specification) and gives
the same values; ``tests/unit/applications/test_recommend_population.py`` compares both forms.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from dagster_project.defs.applications.recommend import (
    K_NEIGHBOURS,
    PLAYBOOK,
    PRODUCTS,
    REASON_TEXT,
    TOP_N,
    W_PEERS,
    W_PLAYBOOK,
    W_POPULARITY,
)


def playbook_masks(clients: Any) -> list[np.ndarray]:
    """One boolean column per :data:`recommend.PLAYBOOK` rule (in its order): the rule's client condition."""
    return [np.asarray(who(clients), dtype=bool) for _, _, who in PLAYBOOK]


def playbook_matrix(
    clients: Any, products: Sequence[str] = PRODUCTS, masks: Sequence[np.ndarray] | None = None
) -> np.ndarray:
    """(clients x products) booleans: a playbook rule targets the product at the client (:data:`recommend.PLAYBOOK`).

    ``clients`` is a DataFrame with the :class:`recommend.ClientProfile` columns (size_class, industry_section,
    technology_firm, firm_stage).
    """
    out = np.zeros((len(clients), len(products)), dtype=bool)
    for (_, targets, _), hit in zip(PLAYBOOK, masks if masks is not None else playbook_masks(clients), strict=False):
        for j, p in enumerate(products):
            if p in targets:
                out[:, j] |= hit
    return out


def advisory_column(clients: Any) -> np.ndarray:
    """:func:`recommend.advisory_recommended` for every row of a DataFrame of client states."""
    return np.asarray(
        (clients.firm_stage == "established")
        & clients.size_class.isin(("large", "medium"))
        & (clients.rating_grade != "D"),
        dtype=bool,
    )


def scores(shares: np.ndarray, playbook: np.ndarray, popularity: np.ndarray) -> np.ndarray:
    """:func:`recommend.score` of every client x product (same arithmetic, same floats)."""
    return W_PEERS * shares + W_PLAYBOOK * playbook.astype(float) + W_POPULARITY * popularity[None, :]


def top_n(score: np.ndarray, allowed: np.ndarray, codes: Sequence[str], n: int = TOP_N) -> np.ndarray:
    """:func:`recommend.rank_products` for every row: (rows x n) column indices best first, -1 where fewer are allowed.

    Ties are broken by product code, as in the per-client form: columns are put in code order, then a stable
    sort by descending score.
    """
    alpha = np.argsort(np.asarray(codes, dtype=object).astype(str), kind="stable")
    key = np.where(allowed, score, -np.inf)[:, alpha]
    order = np.argsort(-key, axis=1, kind="stable")[:, :n]
    ok = np.take_along_axis(allowed[:, alpha], order, axis=1)
    return np.where(ok, alpha[order], -1)


def hits_at_n(top: np.ndarray, adopted: np.ndarray) -> np.ndarray:
    """:func:`recommend.hit_at_k` for every row: one of the row's ``top`` columns (-1 = none) is adopted (0/1
    floats)."""
    picked = np.take_along_axis(adopted, np.maximum(top, 0), axis=1) & (top >= 0)
    return picked.any(axis=1).astype(float)


def reason_columns(
    share: np.ndarray,
    popularity: np.ndarray,
    playbook: Sequence[np.ndarray],
    secured_high_risk: np.ndarray,
    unrated: np.ndarray,
    k: int = K_NEIGHBOURS,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`recommend.reason_codes` and :func:`recommend.reason_text` for every recommendation row at once:
    (codes, texts).

    ``playbook`` is one boolean array per :data:`PLAYBOOK` rule (in its order): the rule targets the row's
    product at the row's client. The codes come in the per-client form's order.
    """
    n = len(share)
    masks: list[tuple[str, np.ndarray]] = [
        ("PEERS_HOLD_STRONG", share >= 0.5),
        ("PEERS_HOLD", (share >= 0.15) & (share < 0.5)),
    ]
    masks += [(code, np.asarray(m, dtype=bool)) for (code, _, _), m in zip(PLAYBOOK, playbook, strict=False)]
    masks.append(("SECURED_FOR_HIGH_RISK_INDUSTRY", np.asarray(secured_high_risk, dtype=bool)))
    any_yet = np.logical_or.reduce([m for _, m in masks]) if masks else np.zeros(n, dtype=bool)
    masks.append(("POPULAR_PRODUCT", ~any_yet | ((popularity >= 0.3) & (share < 0.15))))
    masks.append(("UNRATED_ASSUMED_R6", np.asarray(unrated, dtype=bool)))
    pct = np.rint(share * 100).astype(np.int64).astype(str).astype(object)
    codes = np.full(n, "", dtype=object)
    texts = np.full(n, "", dtype=object)
    for code, mask in masks:
        template = REASON_TEXT[code].replace("{k}", str(k))
        first = template[:1].upper() + template[1:]  # the sentence's first part starts with a capital
        if "{pct}" in template:
            part = template.split("{pct}", 1)[0] + pct + template.split("{pct}", 1)[1]
            part_first = first.split("{pct}", 1)[0] + pct + first.split("{pct}", 1)[1]
        else:
            part, part_first = np.full(n, template, dtype=object), np.full(n, first, dtype=object)
        codes = np.where(mask, np.where(codes == "", code, codes + "|" + code), codes)
        texts = np.where(mask, np.where(texts == "", part_first, texts + "; " + part), texts)
    return codes, texts

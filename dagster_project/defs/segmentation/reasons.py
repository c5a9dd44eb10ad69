"""A reason for every client: the three features that most place it in its segment, from the model's own geometry.

The model's space is centred: the average client sits at the origin. A client's centroid explains part of how the
client differs from the average client; per column of the space, the squared distance from the origin minus the
squared distance from the centroid is that part, and the columns of a feature add up to the feature's contribution
(a categorical feature sums its categories' columns):

    contribution_j = sum over j's columns of z^2 - (z - c_segment)^2

It is positive where the client departs from the average in the direction its segment does. The three largest are
the client's reasons (:func:`reason_codes`); SQL turns each into an RM's words with the client's value, the
segment's and all clients' (:func:`reason_text_sql`), e.g. ``trade finance share of limit 70 % (segment 65 %, all
clients 8 %)``. The runner-up segment (the second-nearest centroid) and the margin to it are reported beside them.
No second model is involved.
"""

from __future__ import annotations

import numpy as np

from dagster_project.defs.segmentation.features import FEATURES, DimensionScaler

REASONS = 3


def feature_matrix(scaler: DimensionScaler) -> np.ndarray:
    """(model columns x FEATURES) 0/1 matrix: which feature each column of the model's space belongs to."""
    index = {f.column: i for i, f in enumerate(FEATURES)}
    m = np.zeros((len(scaler.columns_), len(FEATURES)))
    for col, (_, feature, _) in enumerate(scaler.columns_):
        m[col, index[feature]] = 1.0
    return m


def contributions(z: np.ndarray, centers: np.ndarray, label: np.ndarray, features: np.ndarray) -> np.ndarray:
    """(n x FEATURES) how much of each client's departure from the average client its segment explains, per feature."""
    return (z**2 - (z - centers[label]) ** 2) @ features


def versus_runner_up(
    z: np.ndarray, centers: np.ndarray, label: np.ndarray, runner_up: np.ndarray, features: np.ndarray
) -> np.ndarray:
    """(n x FEATURES) how much each feature pulls each client to its segment rather than to the runner-up: always
    positive in sum (the client's own centroid is the nearer), so it gives a reason where :func:`contributions` has
    none (a client at the average of everything)."""
    return ((z - centers[runner_up]) ** 2 - (z - centers[label]) ** 2) @ features


def reason_codes(contrib: np.ndarray, fallback: np.ndarray | None = None, k: int = REASONS) -> np.ndarray:
    """(n x k) indexes into FEATURES of the k largest positive contributions, strongest first; places left empty
    are filled from ``fallback``'s largest positive ones (features not already given); -1 where still none."""
    order = np.argsort(-contrib, axis=1, kind="stable")[:, :k]
    codes = np.where(np.take_along_axis(contrib, order, axis=1) > 0, order, -1)
    if fallback is not None and (codes < 0).any():
        rows = np.flatnonzero((codes < 0).any(axis=1))
        for pos in range(k):  # column loop over the k places, never over clients
            empty = rows[codes[rows, pos] < 0]
            if not len(empty):
                continue
            taken = np.zeros((len(empty), contrib.shape[1]), dtype=bool)
            np.put_along_axis(taken, np.maximum(codes[empty], 0), codes[empty] >= 0, axis=1)
            f = np.where(taken | (fallback[empty] <= 0), -np.inf, fallback[empty])
            best = f.argmax(axis=1)
            codes[empty, pos] = np.where(np.isfinite(f[np.arange(len(empty)), best]), best, -1)
    return codes.astype(np.int16)


def _money(v: str) -> str:
    return (
        f"CASE WHEN {v} IS NULL THEN 'n/a' WHEN abs({v}) >= 1e9 THEN printf('CNY %.1fbn', {v} / 1e9) "
        f"WHEN abs({v}) >= 1e6 THEN printf('CNY %.1fm', {v} / 1e6) WHEN abs({v}) >= 1e3 "
        f"THEN printf('CNY %.0fk', {v} / 1e3) ELSE printf('CNY %.0f', {v}) END"
    )


ORDER_WORDS = {"size": ("micro", "small", "medium", "large"), "tier": ("bronze", "silver", "gold", "platinum")}


def _fmt(unit: str, v: str) -> str:
    """SQL rendering of a numeric value in its unit (DuckDB printf)."""
    if unit == "share":
        return f"CASE WHEN {v} IS NULL THEN 'n/a' ELSE printf('%d %%', CAST(round(100 * {v}) AS INTEGER)) END"
    if unit == "cny":
        return _money(v)
    if unit == "months":
        return f"CASE WHEN {v} IS NULL THEN 'n/a' ELSE printf('%d months', CAST(round({v}) AS INTEGER)) END"
    if unit == "ratio":
        return f"CASE WHEN {v} IS NULL THEN 'n/a' ELSE printf('%.2f', {v}) END"
    if unit == "grade":
        grades = " ".join(
            f"WHEN {i} THEN '{g}'" for i, g in enumerate(["R1", "R2", "R3", "R4", "R5", "R6", "R7", "R8", "D"], start=1)
        )
        return f"coalesce(CASE CAST(round({v}) AS INTEGER) {grades} END, 'unrated')"
    if unit in ORDER_WORDS:
        words = " ".join(f"WHEN {i} THEN '{w}'" for i, w in enumerate(ORDER_WORDS[unit], start=1))
        return f"coalesce(CASE CAST(round({v}) AS INTEGER) {words} END, 'unknown')"
    return f"CASE WHEN {v} IS NULL THEN 'n/a' ELSE format('{{:,}}', CAST(round({v}) AS BIGINT)) END"


CLIENT_VALUE = {  # prepared feature -> its value on a marts.client_features row f (features.prepare, in SQL)
    "rating_grade_order": (
        "CASE f.rating_grade "
        + " ".join(
            f"WHEN '{g}' THEN {i}" for i, g in enumerate(["R1", "R2", "R3", "R4", "R5", "R6", "R7", "R8", "D"], start=1)
        )
        + " END"
    ),
    "size_class_order": "CASE f.size_class WHEN 'micro' THEN 1 WHEN 'small' THEN 2 WHEN 'medium' THEN 3 "
    "WHEN 'large' THEN 4 END",
    "value_tier_order": "CASE f.value_tier WHEN 'bronze' THEN 1 WHEN 'silver' THEN 2 WHEN 'gold' THEN 3 "
    "WHEN 'platinum' THEN 4 END",
    "no_bureau_report": "CASE WHEN coalesce(f.has_bureau_report, false) THEN 0 ELSE 1 END",
}
WORDS = {
    "size_class_order": "coalesce(f.size_class, 'unknown')",
    "value_tier_order": "coalesce(f.value_tier, 'unranked')",
    "rating_grade_order": "coalesce(f.rating_grade, 'unrated')",
}


def reason_text_sql(code: str) -> str:
    """SQL text of reason ``code`` (a column holding an index into FEATURES) for a row joined as: ``f`` the client's
    marts.client_features row, ``p`` / ``pc`` its segment's profile rows (prefix ``p_`` numeric, ``pc_`` for the
    client's own category: see scoring.REASON_JOIN)."""
    cases = []
    for i, feat in enumerate(FEATURES):
        if feat.categorical:
            own = f"coalesce(CAST(f.{feat.column} AS VARCHAR), 'unknown')"
            text = (
                f"'{feat.label} ' || {own} || ' (segment ' || {_fmt('share', 'pc.segment_value')} || ', all "
                f"clients ' || {_fmt('share', 'pc.population_value')} || ')'"
            )
        else:
            v = CLIENT_VALUE.get(feat.column, f"f.{feat.column}")
            if feat.column.startswith("limit_share_"):
                v = f"coalesce(f.{feat.column}, 0)"
            own = WORDS.get(feat.column, _fmt(feat.unit, v))
            text = (
                f"'{feat.label} ' || {own} || ' (segment ' || {_fmt(feat.unit, 'p.segment_value')} || ', all "
                f"clients ' || {_fmt(feat.unit, 'p.population_value')} || ')'"
            )
        cases.append(f"WHEN {i} THEN {text}")
    return f"CASE {code} {' '.join(cases)} END"

"""Clients in default and the segmentation (issue 34 item 2; docs/segmentation.md, "Clients in default").

A client is **in default** when its rating grade is ``D`` - dbt's default trigger (macro ``default_trigger``: latest
usage month 90+ days past due, a latest bureau report with 90+ dpd in 12 months, or a default registered in the last 12
months), the one definition the rating, ``marts.workout_clients`` and the early warnings share.

The decision (measured on the tuning seeds at 18 and 36 months of history, docs/segmentation.md): clients in default
are **trained on, scored and kept in their model segment of record**, like every scorable client; their state is
reported by ``marts.workout_clients`` (and ``rating_grade`` / ``default_trigger`` in ``marts.client_segments``), not
by a segment. Leaving them out of training (every client still scored by the nearest centroid), or also reporting them
in a segment of their own, moved ARI against the planted archetypes more between 18 and 36 months, not less.
The predicates below draw the training sample without them for that measurement (``training.sample_sql``,
``scripts/default_population.py``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

IN_DEFAULT_GRADE = "D"


def in_default(rating_grade: pd.Series) -> np.ndarray:
    """Whether each client is in default (rating grade D); an unrated client is not."""
    return (rating_grade.astype("string") == IN_DEFAULT_GRADE).fillna(False).to_numpy(dtype=bool)


def performing_sql(rating_grade: str = "f.rating_grade") -> str:
    """SQL predicate: the client is not in default."""
    return f"{rating_grade} IS DISTINCT FROM '{IN_DEFAULT_GRADE}'"


def performing(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of client_features not in default, in their order."""
    return frame[~in_default(frame["rating_grade"])]

"""Clients in default and the segmentation (issue 34 item 2; docs/segmentation.md, "Clients in default").

A client is **in default** when its rating grade is ``D`` - dbt's default trigger (macro ``default_trigger``: latest
usage month 90+ days past due, a latest bureau report with 90+ dpd in 12 months, or a default registered in the last 12
months), the one definition the rating, ``marts.workout_clients`` and the early warnings share.

* **Not trained on**: the segments describe what kind of business a client is and what it buys; a default is a state
  the workout team handles. Trained on, clients in default of every kind gather into a segment of their own that grows
  with the history a bank keeps (more clients have defaulted), and they pull every segment's credit profile.
* **Scored**: each gets the nearest segment of the performing clients - its business segment of record, which it keeps
  when it cures - with its reasons; its state is reported by ``marts.workout_clients`` (and ``rating_grade`` /
  ``default_trigger`` in ``marts.client_segments``), not by a segment.
* **Drift** compares like with like: the training distribution against the scored clients not in default.

Clients with an early warning (distressed, still performing) are trained on and scored as every performing client:
a warning is a calibrated likelihood, not a state, and ``marts.risk_early_warnings`` reports it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

IN_DEFAULT_GRADE = "D"


def in_default(rating_grade: pd.Series) -> np.ndarray:
    """Whether each client is in default (rating grade D); an unrated client is not."""
    return (rating_grade.astype("string") == IN_DEFAULT_GRADE).fillna(False).to_numpy(dtype=bool)


def performing_sql(rating_grade: str = "f.rating_grade") -> str:
    """SQL predicate: the client is not in default (the training population)."""
    return f"{rating_grade} IS DISTINCT FROM '{IN_DEFAULT_GRADE}'"


def performing(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of client_features not in default, in their order (the training population of a given frame)."""
    return frame[~in_default(frame["rating_grade"])]

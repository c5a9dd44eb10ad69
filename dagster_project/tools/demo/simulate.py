"""Month-by-month simulation of usage snapshots and quarterly bureau reports (bounded memory)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from dagster_project.tools.demo import profiles as pf
from dagster_project.tools.demo.accounts import Accounts
from dagster_project.tools.demo.draws import _round_money, _sigmoid
from dagster_project.tools.demo.population import Calendar, Population
from dagster_project.tools.demo.profiles import (
    _AMORTISATION,
    CHANNELS,
    PRODUCTS,
    SECURITY_TYPES,
    ST_CLOSED,
    ST_DORMANT,
    _profile_array,
)


class _Simulator:
    """Month-by-month simulation of arrears, balances and bureau reports."""

    DPD_MEMORY = 12

    def __init__(
        self, rng: np.random.Generator, pop: Population, acc: Accounts, cal: Calendar, plan: Any = None
    ) -> None:
        self.rng, self.pop, self.acc, self.cal = rng, pop, acc, cal
        self.plan = plan  # scenario planted defaults (see profiles._DEFAULTS); None for the demo
        self.dpd_buffer = np.zeros((pop.n, self.DPD_MEMORY), dtype=np.int16)
        self.client_dpd = np.zeros(pop.n, dtype=np.int64)
        self.ar = rng.normal(0, 0.08, acc.n)
        self.prev_balance = np.zeros(acc.n)
        self.report_counter = 0
        self.chan_cdf = np.cumsum(np.array([pf.PROFILES[a].channels for a in pf.ARCHETYPES]), axis=1)

    # -- client level ------------------------------------------------------------------

    def step_arrears(self, t: int) -> None:
        """Draw the client-level days past due for month ``t`` (all clients)."""
        pop, rng, n = self.pop, self.rng, self.pop.n
        p_event = 0.002 + 0.15 * _sigmoid((585.0 - pop.score(t)) / 28.0)
        event = rng.random(n) < p_event
        sev = rng.random(n)
        amount = np.where(
            sev < 0.45, rng.integers(1, 30, n), np.where(sev < 0.88, rng.integers(30, 60, n), rng.integers(60, 90, n))
        )
        dpd = np.where(event, amount, 0)
        k = t - pop.distress_hit
        ramp = np.where(k == -3, rng.integers(0, 15, n), np.minimum(90 + 30 * k, 720) + rng.integers(0, 10, n))
        self.client_dpd = np.where(pop.is_det, np.where(k < -3, 0, ramp), dpd)
        if self.plan is not None:
            self.client_dpd = self.plan.arrears(t, self.client_dpd)
        self.dpd_buffer[:, t % self.DPD_MEMORY] = self.client_dpd

    # -- product usage -----------------------------------------------------------------

    def _utilisation(self, t: int) -> np.ndarray:
        acc, pop, rng = self.acc, self.pop, self.rng
        self.ar = 0.75 * self.ar + rng.normal(0, 0.06, acc.n)
        util = np.clip(acc.base_util + self.ar, 0.0, 1.0)
        c = acc.client
        ramp = np.where(pop.is_det[c], np.clip((t - (pop.distress_hit[c] - 7)) / 4.0, 0, 1), 0.0)
        stressed = pop.util_top[c] + rng.normal(0, 0.012, acc.n)
        util = util * (1 - ramp) + np.clip(stressed, 0.0, 1.05) * ramp
        if self.plan is not None:
            util = self.plan.utilisation(t, c, util)
        status = pop.status[c]
        util = np.where((status == ST_DORMANT) & (t >= pop.dormant_from[c]), 0.0, util)
        util = np.where((status == ST_CLOSED) & (t >= acc.end_idx - 1), 0.0, util)
        return util

    def usage_frame(self, t: int) -> pd.DataFrame:
        acc, pop, rng = self.acc, self.pop, self.rng
        if t == 0:  # balances carried in from before the window
            self.prev_balance = _round_money(acc.limit * acc.base_util)
        util = self._utilisation(t)
        active = np.flatnonzero((acc.open_idx <= t) & (t < acc.end_idx))
        c = acc.client[active]
        balance = _round_money(acc.limit[active] * util[active])
        prev = np.where(acc.open_idx[active] == t, 0.0, self.prev_balance[active])
        dpd = np.where(balance > 0, self.client_dpd[c], 0)
        repay = prev * _AMORTISATION[acc.product[active]] * np.where(dpd >= 30, 0.1, 1.0)
        draw = balance - prev + repay
        repay = _round_money(np.where(draw < 0, repay - draw, repay))
        draw = _round_money(np.maximum(draw, 0.0))
        self.prev_balance = np.where(acc.open_idx <= t, _round_money(acc.limit * util), 0.0)
        inactive = (pop.status[c] == ST_DORMANT) & (t >= pop.dormant_from[c])
        lam = _profile_array("interactions")[pop.arch[c]] * 0.6 * (1 + 2 * pop.progress(t)[c])
        interactions = rng.poisson(np.where(inactive, 0.05, lam))
        u = rng.random(len(active)) * self.chan_cdf[pop.arch[c], -1]
        drawn = np.minimum((u[:, None] >= self.chan_cdf[pop.arch[c]]).sum(axis=1), 2)
        channel = np.where(rng.random(len(active)) < 0.8, pop.primary_channel[c], drawn)
        return pd.DataFrame(
            {
                "account_no": active.astype(np.int64) + 1,
                "client_no": c.astype(np.int64) + 1,
                "product_code": pd.Categorical.from_codes(acc.product[active], categories=list(PRODUCTS)),
                "credit_limit": acc.limit[active],
                "outstanding_balance": balance,
                "drawdown_amount": draw,
                "repayment_amount": repay,
                "days_past_due": dpd.astype(np.int32),
                "interaction_count": interactions.astype(np.int32),
                "channel": pd.Categorical.from_codes(channel.astype(np.int8), categories=list(CHANNELS)),
                "term_months": acc.term_months[active],
                "security_type": pd.Categorical.from_codes(acc.security[active], categories=list(SECURITY_TYPES)),
            }
        )

    # -- credit bureau -----------------------------------------------------------------

    def bureau_frame(self, t: int) -> pd.DataFrame:
        pop, rng, cal = self.pop, self.rng, self.cal
        days_in_month = int((cal.month_end(t) - cal.month_start(t)).astype(np.int64)) + 1
        report_date = cal.month_start(t) + rng.integers(0, days_in_month, pop.n).astype("timedelta64[D]")
        sel = np.flatnonzero(pop.has_bureau & (pop.founded <= report_date - np.timedelta64(180, "D")))
        m = len(sel)
        prog = pop.progress(t)[sel]
        arch = pop.arch[sel]
        score = np.clip(np.round(pop.score(t)[sel] + rng.normal(0, 12, m)), 300, 900)
        de = pop.debt_to_equity[sel] * (1 + 2.0 * prog) * rng.lognormal(0, 0.05, m)
        debt = pop.assets[sel] * de / (1 + de) * rng.lognormal(0, 0.08, m)
        dpd_now = self.client_dpd[sel]
        overdue = np.where(dpd_now > 0, debt * rng.uniform(0.01, 0.05, m) * (1 + dpd_now / 30), 0.0)
        margin = np.where(
            pop.is_det[sel], pop.margin[sel] - (pop.margin[sel] + 0.12) * prog, pop.margin[sel]
        ) + rng.normal(0, 0.01, m)
        defaults = pop.defaults[sel] + (pop.is_det[sel] & (t >= pop.distress_hit[sel]))
        self.report_counter += m
        first_no = self.report_counter - m + 1
        frame = pd.DataFrame(
            {
                "report_no": np.arange(first_no, first_no + m, dtype=np.int64),
                "client_no": sel.astype(np.int64) + 1,
                "report_date": report_date[sel],
                "bureau_score": score.astype(np.int32),
                "total_debt": _round_money(debt),
                "overdue_amount": _round_money(np.minimum(overdue, debt)),
                "max_days_past_due_12m": self.dpd_buffer[sel].max(axis=1).astype(np.int32),
                "defaults_5y": defaults.astype(np.int32),
                "inquiries_6m": rng.poisson(_profile_array("inquiries")[arch] + 5 * prog).astype(np.int32),
                "collateral_value": _round_money(debt * pop.coverage[sel] * rng.lognormal(0, 0.05, m)),
                "operating_cash_flow": _round_money(pop.revenue[sel] * margin),
                "debt_service_12m": np.where(
                    rng.random(m) < 0.7, _round_money(debt * rng.uniform(0.12, 0.3, m)), np.nan
                ),
                "current_ratio": np.where(
                    rng.random(m) < 0.85, np.round(pop.current_ratio[sel] * (1 - 0.5 * prog), 3), np.nan
                ),
                "debt_to_equity": np.where(rng.random(m) < 0.85, np.round(de, 3), np.nan),
                "legal_judgments": rng.poisson(_profile_array("judgments")[arch] + 2.5 * prog).astype(np.int32),
            }
        )
        return frame if self.plan is None else self.plan.bureau(t, sel, frame)


_USAGE_SQL = """
SELECT DATE '{month}' AS snapshot_month, printf('AC%09d', account_no) AS account_id,
       printf('CL%08d', client_no) AS client_id,
       CAST(product_code AS VARCHAR) AS product_code,
       CAST(credit_limit AS DECIMAL(18,2)) AS credit_limit,
       CAST(outstanding_balance AS DECIMAL(18,2)) AS outstanding_balance,
       CAST(drawdown_amount AS DECIMAL(18,2)) AS drawdown_amount,
       CAST(repayment_amount AS DECIMAL(18,2)) AS repayment_amount,
       days_past_due, interaction_count, CAST(channel AS VARCHAR) AS channel,
       term_months, CAST(security_type AS VARCHAR) AS security_type
FROM df
"""


_BUREAU_SQL = """
SELECT printf('RP%010d', report_no) AS report_id, printf('CL%08d', client_no) AS client_id,
       CAST(report_date AS DATE) AS report_date, bureau_score,
       CAST(total_debt AS DECIMAL(18,2)) AS total_debt,
       CAST(overdue_amount AS DECIMAL(18,2)) AS overdue_amount,
       max_days_past_due_12m, defaults_5y, inquiries_6m,
       CAST(collateral_value AS DECIMAL(18,2)) AS collateral_value,
       CAST(operating_cash_flow AS DECIMAL(18,2)) AS operating_cash_flow,
       CAST(debt_service_12m AS DECIMAL(18,2)) AS debt_service_12m,
       CAST(current_ratio AS DECIMAL(12,3)) AS current_ratio,
       CAST(debt_to_equity AS DECIMAL(12,3)) AS debt_to_equity,
       legal_judgments
FROM df
"""

"""Realistic demo-data generator for the lendseg landing zone (landing contract v1).

The generator plants seven client archetypes (see :data:`ARCHETYPES`) in a synthetic
corporate-lending portfolio and writes three landing sources, one file per delivery:

* ``clients/clients_<YYYYMM>.<ext>``                 -- one snapshot at ``end_month``
* ``credit_bureau/credit_bureau_<YYYYMM>.<ext>``     -- one file per quarter-end month
* ``product_usage/product_usage_<YYYYMM>.<ext>``     -- one file per month of the window

Everything is vectorised with numpy/pandas and driven by a single
``np.random.default_rng(seed)``, so a seed always reproduces byte-identical files.
Usage is simulated month by month (only per-account state is kept between months), so
memory stays bounded even for a million clients.  Files are written by DuckDB.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from dagster_project.lib.months import add_months as _add_months
from dagster_project.tools.demo import profiles as pf
from dagster_project.tools.demo.accounts import _eligible_products, _make_accounts, facility_terms
from dagster_project.tools.demo.draws import _first_of_month
from dagster_project.tools.demo.population import _CLIENT_SQL, Calendar, Population, _client_frame, _make_population
from dagster_project.tools.demo.profiles import (
    ARCHETYPES,
    BUREAU_COLUMNS,
    CHANNELS,
    CLIENT_COLUMNS,
    PRODUCTS,
    PROVINCE_CODES,
    STATUSES,
    USAGE_COLUMNS,
)
from dagster_project.tools.demo.simulate import _BUREAU_SQL, _USAGE_SQL, _Simulator

__all__ = [
    "ARCHETYPES",
    "BUREAU_COLUMNS",
    "CHANNELS",
    "CLIENT_COLUMNS",
    "PRODUCTS",
    "PROVINCE_CODES",
    "STATUSES",
    "USAGE_COLUMNS",
    "generate",
]


class _Writer:
    """Writes DataFrames through DuckDB as CSV (UTF-8, header) or Parquet."""

    def __init__(self, fmt: str) -> None:
        if fmt not in ("csv", "parquet"):
            raise ValueError(f"fmt must be 'csv' or 'parquet', got {fmt!r}")
        self.fmt = fmt
        self.con = duckdb.connect()

    @property
    def options(self) -> str:
        if self.fmt == "parquet":
            return "FORMAT parquet"
        return "FORMAT csv, HEADER, DELIMITER ',', DATEFORMAT '%Y-%m-%d', TIMESTAMPFORMAT '%Y-%m-%d %H:%M:%S'"

    def write(self, df: pd.DataFrame, select_sql: str, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        target = str(path).replace("'", "''")
        self.con.register("df", df)
        try:
            self.con.execute(f"COPY ({select_sql}) TO '{target}' ({self.options})")
        finally:
            self.con.unregister("df")
        return path

    def close(self) -> None:
        self.con.close()


def _write_truth(pop: Population, truth_path: Path) -> None:
    """``client_id,archetype`` answer key (kept outside the landing directory)."""
    df = pd.DataFrame(
        {
            "client_no": np.arange(1, pop.n + 1, dtype=np.int64),
            "archetype": pd.Categorical.from_codes(pop.arch, categories=list(pf.ARCHETYPES)),
        }
    )
    csv = _Writer("csv")
    try:
        csv.write(
            df,
            "SELECT printf('CL%08d', client_no) AS client_id, CAST(archetype AS VARCHAR) AS archetype FROM df",
            truth_path,
        )
    finally:
        csv.close()


def _default_end_month() -> date:
    return _add_months(_first_of_month(date.today()), -1)


def generate(
    out_dir: Path,
    n_clients: int = 5000,
    months: int = 24,
    seed: int = 42,
    fmt: str = "csv",
    truth_path: Path | None = None,
    end_month: date | None = None,
    progress: bool = True,
    scenario: str = "demo",
) -> dict[str, list[Path]]:
    """Generate the demo landing data set and return the written files per source.

    ``end_month`` (normalised to the first of its month, default: previous month) is the
    last snapshot month; usage covers ``months`` months ending there, bureau reports come
    quarterly (one file per quarter-end month inside the window) and the client master is
    one snapshot named after ``end_month``.  ``truth_path`` optionally receives
    ``client_id,archetype``; it must lie outside ``out_dir``.  ``scenario`` (scenarios.py)
    swaps the archetype tables: ``demo`` (default) is the portfolio the model was built on.
    """
    from dagster_project.tools.demo.scenarios import applied

    with applied(scenario):
        return _generate(out_dir, n_clients, months, seed, fmt, truth_path, end_month, progress)


def _generate(
    out_dir: Path,
    n_clients: int,
    months: int,
    seed: int,
    fmt: str,
    truth_path: Path | None,
    end_month: date | None,
    progress: bool,
) -> dict[str, list[Path]]:
    if n_clients < 1 or months < 1:
        raise ValueError("n_clients and months must be positive")
    out_dir = Path(out_dir)
    if truth_path is not None and Path(truth_path).resolve().is_relative_to(out_dir.resolve()):
        raise ValueError("truth_path must not be inside out_dir")
    end = _first_of_month(end_month) if end_month is not None else _default_end_month()
    cal = Calendar(end_month=end, months=months)
    writer = _Writer(fmt)
    rng = np.random.default_rng(seed)
    files: dict[str, list[Path]] = {"clients": [], "credit_bureau": [], "product_usage": []}
    quarter_ends = [t for t in range(months) if cal.month(t).astype(object).month % 3 == 0]
    bar = tqdm(total=1 + months + len(quarter_ends), desc="lendseg generate", unit="file", disable=not progress)
    try:
        pop = _make_population(rng, n_clients, cal)
        clients = _client_frame(rng, pop, cal)
        eligible = _eligible_products(
            pop,
            cal,
            clients["industry_code"].to_numpy(dtype=str),
            clients["employee_count"].to_numpy(dtype=float),
            clients["annual_revenue"].to_numpy(dtype=float),
        )
        accounts = facility_terms(
            seed,
            _make_accounts(rng, pop, months, eligible),
            clients["employee_count"].to_numpy(dtype=float),
            pop.base_score,
        )
        plan = None if pf._DEFAULTS is None else pf._DEFAULTS(seed, pop, cal)
        if truth_path is not None:
            _write_truth(pop, Path(truth_path))
            if plan is not None:
                plan.write_truth(Path(truth_path).with_name("planted_defaults.csv"))
        path = out_dir / "clients" / f"clients_{end:%Y%m}.{fmt}"
        files["clients"].append(writer.write(clients, _CLIENT_SQL, path))
        bar.update()
        del clients
        _simulate_and_write(_Simulator(rng, pop, accounts, cal, plan), writer, out_dir, set(quarter_ends), files, bar)
    finally:
        bar.close()
        writer.close()
    return files


def _simulate_and_write(
    sim: _Simulator, writer: _Writer, out_dir: Path, quarter_ends: set[int], files: dict[str, list[Path]], bar: tqdm
) -> None:
    """Run the monthly simulation (with a 12-month arrears warm-up) and write deliveries."""
    for t in range(-_Simulator.DPD_MEMORY, sim.cal.months):
        sim.step_arrears(t)
        if t < 0:
            continue
        month: date = sim.cal.month(t).astype(object)
        tag, ext = f"{month:%Y%m}", writer.fmt
        path = out_dir / "product_usage" / f"product_usage_{tag}.{ext}"
        sql = _USAGE_SQL.format(month=f"{month:%Y-%m-%d}")
        files["product_usage"].append(writer.write(sim.usage_frame(t), sql, path))
        bar.update()
        if t in quarter_ends:
            path = out_dir / "credit_bureau" / f"credit_bureau_{tag}.{ext}"
            files["credit_bureau"].append(writer.write(sim.bureau_frame(t), _BUREAU_SQL, path))
            bar.update()

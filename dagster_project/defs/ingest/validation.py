"""Run a GX 1.x expectation suite as SQL inside DuckDB (GX SQL datasource over duckdb-engine).

Why GX's SQL route failed on DuckDB at first ("MetricResolutionError: list index out of range"): GX's
SQLAlchemy engine runs each metric query on a pooled connection and closes it before fetching the rows;
closing rolls back, and DuckDB 2.0 discards a result that was not fully fetched when its connection rolls
back, so every metric came back empty. Registering DuckDB as a dialect that needs one persisted connection
(as GX already does for SQLite and SQL Server) fixes it; see :func:`_patch_gx_for_duckdb`. GX has no regex
support for the DuckDB dialect, so regex rules validate a boolean computed by DuckDB's ``regexp_full_match``.

Nothing is loaded into pandas: DuckDB computes every expectation; only the row numbers (``_row``) of
unexpected rows come back, and only when there are few enough of them (``flag_budget``).
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass, field
from pathlib import Path

from dagster_project.defs.ingest.contract import SOURCES
from dagster_project.defs.ingest.suites import Rule, build_suite

_patched = False


def _patch_gx_for_duckdb() -> None:
    global _patched
    if _patched:
        return
    import great_expectations.execution_engine.sqlalchemy_execution_engine as engine_mod

    class _DuckDialect(str, enum.Enum):  # noqa: UP042 - GX's own dialect enum is (str, Enum); StrEnum's str() differs
        DUCKDB = "duckdb"

    engine_mod._PERSISTED_CONNECTION_DIALECTS = (*engine_mod._PERSISTED_CONNECTION_DIALECTS, _DuckDialect.DUCKDB)
    _patched = True


@dataclass
class RuleResult:
    rule: str
    column: str | None
    element_count: int = 0
    unexpected_count: int = 0
    sample_rows: list[int] = field(default_factory=list)

    @property
    def success(self) -> bool:
        return self.unexpected_count == 0


@dataclass
class SuiteOutcome:
    suite: str
    results: dict[str, RuleResult]
    flags: list[tuple[int, str]] = field(default_factory=list)  # (row number, rule), when complete
    complete: bool = False  # False: too many unexpected rows to list (the caller rejects on counts)

    @property
    def unexpected_total(self) -> int:
        return sum(r.unexpected_count for r in self.results.values())


def landing_query(source: str, table: str = "stage", batch: bool = False) -> str:
    """What the landing suite validates: typed values, ``<col>__unparsed`` texts, derived checks, ``_row``.

    ``batch``: the table holds several deliveries, each row with its ``_delivery`` number and ``_row`` (its row
    number in that delivery), so one validation covers every delivery of a source in a run.
    """
    cols = ["_delivery", "_row"] if batch else ["rowid + 1 AS _row"]
    for c in SOURCES[source].kept:
        name = c.stored_name
        if c.type == "VARCHAR":
            cols.append(f'"{name}"')
        else:
            cols.append(f'TRY_CAST("{name}" AS {c.type}) AS "{name}"')
            cols.append(
                f'CASE WHEN "{name}" IS NOT NULL AND TRY_CAST("{name}" AS {c.type}) IS NULL '
                f'THEN "{name}" END AS "{name}__unparsed"'
            )
    if source == "clients":
        cols.append("regexp_full_match(industry_code, '[A-Ta-t]([0-9]{2,4})?') AS industry_code_well_formed")
    if source == "product_usage":
        cols.append("day(TRY_CAST(snapshot_month AS DATE)) AS snapshot_day")
    if source == "review_decisions":
        cols.append(
            "(decision IS DISTINCT FROM 'override' OR TRY_CAST(segment_id AS BIGINT) IS NOT NULL) "
            "AS override_has_segment"
        )
    return f"SELECT {', '.join(cols)} FROM {table}"


class SqlSuite:
    """One GX suite bound to one DuckDB file and query, validated in-database."""

    def __init__(
        self,
        name: str,
        suite_rules: list[Rule],
        db_path: Path,
        query: str,
        read_only: bool = True,
        index_columns: tuple[str, ...] = ("_row",),
    ):
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        _patch_gx_for_duckdb()
        self.name, self.rules, self.index_columns = name, {r.name: r for r in suite_rules}, list(index_columns)
        self.ctx = gx.get_context(mode="ephemeral")
        self.ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
        self.source = self.ctx.data_sources.add_sql(
            name,
            connection_string=f"duckdb:///{db_path}",
            kwargs={"connect_args": {"read_only": read_only}, "pool_reset_on_return": None},
        )
        batch = self.source.add_query_asset(name, query=query).add_batch_definition_whole_table("all")
        suite = self.ctx.suites.add(build_suite(name, list(self.rules.values())))
        self.definition = self.ctx.validation_definitions.add(
            gx.ValidationDefinition(name=name, data=batch, suite=suite)
        )

    def _run(self, fmt: str, limit: int = 5):
        # GX's SQL engine caps unexpected_index_list at partial_unexpected_count, even in COMPLETE mode.
        result_format = {
            "result_format": fmt,
            "unexpected_index_column_names": self.index_columns,
            "return_unexpected_index_query": False,
            "partial_unexpected_count": limit,
        }
        res = self.definition.run(result_format=result_format)
        for r in res.results:
            if r.exception_info and r.exception_info.get("raised_exception"):
                raise RuntimeError(
                    f"GX suite {self.name}: {r.expectation_config.type} raised "
                    f"{r.exception_info.get('exception_message')}"
                )
        return res.results

    def validate(self, flag_budget: int) -> SuiteOutcome:
        """Counts for every rule; the unexpected row numbers too when there are at most ``flag_budget``."""
        out = SuiteOutcome(self.name, {n: RuleResult(n, r.column) for n, r in self.rules.items()})
        for r in self._run("SUMMARY"):
            agg = out.results[r.expectation_config.meta["rule"]]
            agg.element_count = int(r.result.get("element_count") or 0)
            agg.unexpected_count = int(r.result.get("unexpected_count") or 0)
            agg.sample_rows = [int(u["_row"]) for u in r.result.get("partial_unexpected_index_list") or []]
        if out.unexpected_total == 0:
            out.complete = True
        elif out.unexpected_total <= flag_budget:
            for r in self._run("COMPLETE", limit=flag_budget):
                name = r.expectation_config.meta["rule"]
                out.flags.extend((int(u["_row"]), name) for u in r.result.get("unexpected_index_list") or [])
            out.complete = True
        return out

    def validate_batch(self, budgets: dict[int, int]) -> dict[int, SuiteOutcome] | None:
        """Per-delivery outcomes of one validation over a batch table (``landing_query(batch=True)``).

        ``budgets``: each delivery's flag budget. A delivery whose unexpected rows exceed its budget gets an
        incomplete outcome (counts and sample rows), as :meth:`validate` would give it alone. Returns None when
        the batch as a whole has more unexpected rows than all budgets together: the caller then validates
        each delivery on its own.
        """
        unexpected = sum(int(r.result.get("unexpected_count") or 0) for r in self._run("SUMMARY"))
        out = {i: SuiteOutcome(self.name, {n: RuleResult(n, r.column) for n, r in self.rules.items()}) for i in budgets}
        if unexpected > sum(budgets.values()):
            return None
        if unexpected:
            flags: dict[int, list[tuple[int, str]]] = {i: [] for i in budgets}
            for r in self._run("COMPLETE", limit=max(1, unexpected)):
                name = r.expectation_config.meta["rule"]
                for u in r.result.get("unexpected_index_list") or []:
                    flags[int(u["_delivery"])].append((int(u["_row"]), name))
            for i, fl in flags.items():
                for row, name in sorted(fl):
                    agg = out[i].results[name]
                    agg.unexpected_count += 1
                    if len(agg.sample_rows) < 5:
                        agg.sample_rows.append(row)
                if len(fl) <= budgets[i]:
                    out[i].flags, out[i].complete = fl, True
        else:
            for o in out.values():
                o.complete = True
        return out

    def release(self) -> None:
        """Close GX's connections to the DuckDB file (GX keeps one persisted connection per engine).

        The suite stays usable: the next ``validate`` reconnects. Staging a new delivery into the same
        scratch file needs the file released first.
        """
        sources = {id(ds): ds for ds in (self.source, self.definition.data.data_asset.datasource)}
        for ds in sources.values():
            engine = getattr(ds, "_execution_engine", None)
            if engine is not None and getattr(engine, "_connection", None) is not None:
                engine._connection.close()
                engine._connection = None
            if engine is not None:
                engine.engine.dispose()
            if getattr(ds, "_engine", None) is not None:  # the datasource's own engine (connection test)
                ds._engine.dispose()

    def close(self) -> None:
        import gc

        self.release()
        self.definition = self.source = self.ctx = None
        gc.collect()

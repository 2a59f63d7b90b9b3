"""Data quality: run a typed expectation suite on a Spark DataFrame with Great Expectations Core 1.x.

Why a wrapper rather than GX directly:
- suites are typed YAML (or code) validated up front, so a typo fails before any Spark job runs;
- cost: every suite is first validated with BOOLEAN_ONLY (cheap); only the expectations that
  failed are re-run with a richer result format to count unexpected rows;
- privacy: for columns marked as personal data GX is never asked for sample values (the
  sample limit is 0, so Spark fetches none), their expectation arguments are redacted, and the
  HTML report is rendered from our own redacted result, never from GX's raw output;
- severity: `error` stops the job (`enforce`), `warn` records and continues.
"""
from __future__ import annotations

import difflib
import html
import json
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from thinkfamily.errors import DataQualityError
from thinkfamily.yamlconf import Strict, load_model

# GX must not phone home; set before great_expectations is first imported (we import it lazily).
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from thinkfamily.config import EnvConfig

log = logging.getLogger(__name__)

Severity = Literal["error", "warn"]

# kwargs naming the column(s) an expectation looks at
COLUMN_KWARGS = ("column", "column_A", "column_B", "column_list")
# kwargs that describe the check rather than carry data values; everything else is redacted
# for expectations touching personal-data columns (a value_set of names is itself personal data)
STRUCTURAL_KWARGS = frozenset(
    {*COLUMN_KWARGS, "mostly", "type_", "type_list", "ignore_row_if", "strict_min", "strict_max",
     "strictly", "parse_strings_as_datetimes", "catch_exceptions"}
)
REDACTED = "<redacted: personal data>"
SAMPLE_COUNT = 5  # sample unexpected values shown for non-personal columns only
DOCS_RUNS = "runs"


# --------------------------------------------------------------------------- suite declaration
def _gx_expectation(type_: str, kwargs: dict[str, Any], meta: dict[str, Any] | None = None) -> Any:
    """The GX Expectation object for a snake_case type name and its arguments."""
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

    return ExpectationConfiguration(type=type_, kwargs=dict(kwargs), meta=meta).to_domain_obj()


def _is_map_expectation(type_: str) -> bool:
    """Row-level expectations (the ones with an unexpected_count); others report one observed value."""
    from great_expectations.expectations.expectation import (
        ColumnMapExpectation,
        ColumnPairMapExpectation,
        MulticolumnMapExpectation,
    )
    from great_expectations.expectations.registry import get_expectation_impl

    return issubclass(get_expectation_impl(type_), (ColumnMapExpectation, ColumnPairMapExpectation, MulticolumnMapExpectation))


def known_expectation_types() -> list[str]:
    import great_expectations  # noqa: F401  (registers the core expectations)
    from great_expectations.expectations.registry import (
        list_registered_expectation_implementations,
    )

    return sorted(list_registered_expectation_implementations())


class ExpectationSpec(Strict):
    """One GX expectation: `type` is GX's snake_case name, `kwargs` its arguments."""

    type: str = Field(description="e.g. expect_column_values_to_not_be_null")
    kwargs: dict[str, Any] = Field(default_factory=dict)
    severity: Severity | None = Field(None, description="None = the suite's severity")

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        known = known_expectation_types()
        if value not in known:
            close = difflib.get_close_matches(value, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else "; see https://greatexpectations.io/expectations"
            raise PydanticCustomError("dq_type", "{message}", {"message": f"unknown expectation type {value!r}{hint}"})
        return value

    @model_validator(mode="after")
    def _valid_kwargs(self) -> ExpectationSpec:
        try:
            _gx_expectation(self.type, self.kwargs)
        except Exception as exc:  # noqa: BLE001 -- any GX rejection is a config error; pydantic v1 field errors reported tersely
            errors = getattr(exc, "errors", None)
            if callable(errors):
                parts = [f"kwargs.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors()]
                problem = "; ".join(dict.fromkeys(parts))
            else:
                problem = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise PydanticCustomError("dq_kwargs", "{message}", {"message": f"{self.type}: {problem}"}) from None
        return self

    def columns(self) -> list[str]:
        """Every column this expectation reads (for the personal-data rules)."""
        out: list[str] = []
        for key in COLUMN_KWARGS:
            value = self.kwargs.get(key)
            if isinstance(value, str):
                out.append(value)
            elif isinstance(value, (list, tuple)):
                out.extend(str(v) for v in value)
        return out


class SuiteSpec(Strict):
    """A named list of expectations with a default severity (`error` stops the job, `warn` records)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$")
    severity: Severity = "error"
    expectations: list[ExpectationSpec] = Field(min_length=1)

    def severity_of(self, spec: ExpectationSpec) -> Severity:
        return spec.severity or self.severity


def load_suite(path: str | Path) -> SuiteSpec:
    """Read a suite YAML; any mistake is a ConfigError like `file: expectations[2].type: ...`."""
    return load_model(path, SuiteSpec)


def parse_suite(data: dict[str, Any], source: str) -> SuiteSpec:
    """Build a suite from data declared elsewhere (e.g. a source YAML); errors name ``source``."""
    return load_model(source, SuiteSpec, data=data)


# --------------------------------------------------------------------------- results
@dataclass(frozen=True)
class ExpectationOutcome:
    """What one expectation found. Never holds values of personal-data columns."""

    type: str
    column: str | None
    kwargs: dict[str, Any]
    severity: Severity
    success: bool
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    observed: str | None = None  # e.g. a row count; None for personal-data columns
    samples: tuple[str, ...] = ()  # a few unexpected values; always empty for personal data
    error: str | None = None  # GX could not evaluate it (e.g. missing column)
    pii: bool = False

    def describe(self) -> str:
        where = f"({self.column})" if self.column else ""
        if self.error:
            return f"{self.type}{where} could not run: {self.error}"
        if self.unexpected_count is not None:
            pct = f" ({self.unexpected_percent:.2f}%)" if self.unexpected_percent is not None else ""
            return f"{self.type}{where}: {self.unexpected_count} unexpected{pct}"
        if self.observed is not None:
            return f"{self.type}{where}: observed {self.observed}"
        return f"{self.type}{where} failed"


FailedExpectation = ExpectationOutcome  # a failed outcome (success=False)

RESULT_COLUMNS = ("run_id", "table", "suite", "expectation", "column", "severity", "success",
                  "unexpected_count", "unexpected_percent", "checked_at")


@dataclass(frozen=True)
class DQResult:
    run_id: str
    suite: str
    table: str
    severity: Severity
    outcomes: tuple[ExpectationOutcome, ...]
    seconds: float
    checked_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def success(self) -> bool:
        return all(o.success for o in self.outcomes)

    @property
    def evaluated(self) -> int:
        return len(self.outcomes)

    @property
    def failed(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success]

    @property
    def blocking(self) -> list[ExpectationOutcome]:
        """Failures whose severity is `error`: these stop the job."""
        return [o for o in self.failed if o.severity == "error"]

    def summary_line(self) -> str:
        head = f"dq {self.table} suite={self.suite}"
        if self.success:
            return f"{head}: passed {self.evaluated}/{self.evaluated} expectations in {self.seconds:.1f}s"
        n_err = len(self.blocking)
        n_warn = len(self.failed) - n_err
        details = "; ".join(o.describe() for o in self.failed)
        return (f"{head}: FAILED {len(self.failed)}/{self.evaluated} expectations "
                f"({n_err} error, {n_warn} warn) in {self.seconds:.1f}s: {details}")

    def to_rows(self) -> list[tuple]:
        """One row per evaluated expectation, in RESULT_COLUMNS order (see results_schema())."""
        return [
            (self.run_id, self.table, self.suite, o.type, o.column, o.severity, o.success,
             o.unexpected_count, o.unexpected_percent, self.checked_at)
            for o in self.outcomes
        ]

    def to_json_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["checked_at"] = self.checked_at.isoformat()
        out["success"] = self.success
        return out


def enforce(result: DQResult) -> None:
    """Stop the job when an `error` expectation failed; `warn` failures pass (run_suite has
    already logged the summary line, at WARNING when anything failed)."""
    if result.blocking:
        failed = "; ".join(o.describe() for o in result.blocking)
        raise DataQualityError(
            f"{result.table}: data-quality suite '{result.suite}' failed {len(result.blocking)} "
            f"blocking expectation(s): {failed}",
            hint="see the data-quality report under <lake>/_dq/docs/index.html",
        )


# --------------------------------------------------------------------------- running
# GX 1.x keeps the current data context in a process-wide "project manager" that validation
# looks up; two threads validating at once would use each other's context. One at a time.
_GX_LOCK = threading.Lock()


def _quiet_context() -> Any:
    """An in-memory GX context: no analytics, no progress bars, nothing written by GX itself."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    for name in ("great_expectations", "great_expectations.core", "great_expectations.validator"):
        logging.getLogger(name).setLevel(logging.WARNING)
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        analytics_enabled=False,
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def _validate(batch: Any, name: str, specs: Sequence[ExpectationSpec], result_format: dict) -> list[Any]:
    """Validate ``specs`` on the batch; one GX result per spec, in order."""
    import great_expectations as gx

    # GX may reorder results and gives unsaved expectations no id: tag each with its position
    expectations = [_gx_expectation(s.type, s.kwargs, meta={"tf_index": i}) for i, s in enumerate(specs)]
    res = batch.validate(gx.ExpectationSuite(name=name, expectations=expectations), result_format=result_format)
    by_index = {r.expectation_config.meta["tf_index"]: r for r in res.results}
    return [by_index[i] for i in range(len(specs))]


def _redact(spec: ExpectationSpec, pii: bool) -> dict[str, Any]:
    if not pii:
        return dict(spec.kwargs)
    return {k: (v if k in STRUCTURAL_KWARGS else REDACTED) for k, v in spec.kwargs.items()}


def _short(value: Any, limit: int = 80) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


_JAVA_EXC = re.compile(r"(?:[a-z_$][\w$]*\.)+([A-Z][\w$]*(?:Exception|Error))")


def _error_message(info: dict[str, Any], pii: bool) -> str | None:
    """The first exception GX recorded, shortened to one line.

    GX keys exception_info by metric when a metric failed, else has the flat form. Spark's
    messages can quote row values, so for personal-data columns only the exception class is kept
    (GX's own 'column does not exist' message is safe and kept).
    """
    entries = [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, dict)]
    for entry in entries:
        if not entry.get("raised_exception"):
            continue
        text = str(entry.get("exception_message") or "").strip()
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        if text.startswith("Error: The column"):
            return _short(lines[0].removeprefix("Error: "), 200)
        # the innermost Java exception (last on its line) says what went wrong
        java = next(((ln, found[-1]) for ln in lines for found in [list(_JAVA_EXC.finditer(ln))] if found), None)
        if pii:
            return f"raised {java[1].group(1) if java else 'an exception'} (details withheld: personal data)"
        if java:
            line, match = java
            return _short(f"{match.group(1)}: {line[match.end():].lstrip(': ')}".rstrip(": "), 200)
        return _short(lines[0] if lines else "GX raised an exception", 200)
    return None


def _outcome(spec: ExpectationSpec, severity: Severity, pii: bool, gx_result: Any) -> ExpectationOutcome:
    columns = spec.columns()
    result = dict(gx_result.result or {})
    error = _error_message(gx_result.exception_info or {}, pii)
    observed = result.get("observed_value")
    samples = () if pii else tuple(_short(v) for v in (result.get("partial_unexpected_list") or [])[:SAMPLE_COUNT])
    count = result.get("unexpected_count")
    pct = result.get("unexpected_percent")
    return ExpectationOutcome(
        type=spec.type,
        column=",".join(columns) if columns else None,
        kwargs=_redact(spec, pii),
        severity=severity,
        success=bool(gx_result.success),
        unexpected_count=int(count) if count is not None else None,
        unexpected_percent=float(pct) if pct is not None else None,
        observed=None if pii or observed is None else _short(observed),
        samples=samples,
        error=error,
        pii=pii,
    )


def run_suite(
    df: DataFrame,
    suite: SuiteSpec,
    *,
    pii_columns: Iterable[str],
    table: str,
    docs_dir: str | None,
    run_id: str | None = None,
) -> DQResult:
    """Validate ``df`` against ``suite``; write the HTML report under ``docs_dir`` when given.

    ``table`` is `layer/name` (e.g. `silver/person_record`), the name `thinkfamily status` uses.

    Pass 1 runs every expectation with BOOLEAN_ONLY (about 4x cheaper than SUMMARY). Only when
    something fails, pass 2 re-runs just the failed expectations with BASIC to count unexpected
    rows; for personal-data columns the sample limit is 0, so no value ever leaves Spark.
    """
    started = time.perf_counter()
    pii = {c.lower() for c in pii_columns}
    specs = list(suite.expectations)
    touches_pii = [any(c.lower() in pii for c in s.columns()) for s in specs]

    cached_here = not df.is_cached
    if cached_here:
        df = df.cache()
    try:
        with _GX_LOCK:
            context = _quiet_context()
            asset = context.data_sources.add_spark(name="thinkfamily").add_dataframe_asset(name=re.sub(r"\W", "_", table))
            batch = asset.add_batch_definition_whole_dataframe("whole").get_batch(batch_parameters={"dataframe": df})

            first = _validate(batch, f"{suite.name}.boolean", specs, {"result_format": "BOOLEAN_ONLY"})
            results: list[Any] = list(first)
            failed_idx = [i for i, r in enumerate(first) if not r.success]
            # personal-data columns: only row-level checks are re-run (for counts, with 0 samples);
            # an aggregate's observed value (e.g. a max or a distinct set) would itself be personal data
            for want_pii, samples in ((True, 0), (False, SAMPLE_COUNT)):
                idx = [i for i in failed_idx
                       if touches_pii[i] == want_pii and (not want_pii or _is_map_expectation(specs[i].type))]
                if not idx:
                    continue
                fmt = {"result_format": "BASIC", "partial_unexpected_count": samples, "include_unexpected_rows": False}
                for i, r in zip(idx, _validate(batch, f"{suite.name}.detail", [specs[i] for i in idx], fmt)):
                    results[i] = r
    finally:
        if cached_here:
            df.unpersist()

    outcomes = tuple(
        _outcome(spec, suite.severity_of(spec), touches_pii[i], results[i]) for i, spec in enumerate(specs)
    )
    result = DQResult(
        run_id=run_id or uuid.uuid4().hex,
        suite=suite.name,
        table=table,
        severity=suite.severity,
        outcomes=outcomes,
        seconds=round(time.perf_counter() - started, 3),
    )
    if docs_dir:
        with _GX_LOCK:  # the docs index is shared by every suite
            write_docs(result, docs_dir)
    log.log(logging.INFO if result.success else logging.WARNING, result.summary_line())
    return result


# --------------------------------------------------------------------------- results table
def results_schema() -> Any:
    from pyspark.sql import types as T

    return T.StructType([
        T.StructField("run_id", T.StringType(), False),
        T.StructField("table", T.StringType(), False),
        T.StructField("suite", T.StringType(), False),
        T.StructField("expectation", T.StringType(), False),
        T.StructField("column", T.StringType(), True),
        T.StructField("severity", T.StringType(), False),
        T.StructField("success", T.BooleanType(), False),
        T.StructField("unexpected_count", T.LongType(), True),
        T.StructField("unexpected_percent", T.DoubleType(), True),
        T.StructField("checked_at", T.TimestampType(), False),
    ])


def results_path(env: EnvConfig) -> str:
    return env.table("_dq", "results")


def docs_path(env: EnvConfig) -> str:
    """Where the data-quality HTML report lives: <lake>/_dq/docs."""
    return f"{env.lake.rstrip('/')}/_dq/docs"


def write_results(spark: SparkSession, env: EnvConfig, results: Iterable[DQResult]) -> int:
    """Append the outcome rows of ``results`` to the `_dq/results` Delta table; returns rows written."""
    from thinkfamily import lake

    rows = [row for r in results for row in r.to_rows()]
    if not rows:
        return 0
    lake.append(spark.createDataFrame(rows, schema=results_schema()), results_path(env))
    return len(rows)


# --------------------------------------------------------------------------- HTML report
_CSS = """body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
.ok{color:#176b2c}.fail{color:#b00020}.warn{color:#8a5a00}code{font-size:90%}"""


def _page(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_CSS}</style></head><body>{body}</body></html>\n")


def _status(ok: bool, severity: str) -> str:
    if ok:
        return "<span class='ok'>passed</span>"
    return f"<span class='{'fail' if severity == 'error' else 'warn'}'>failed ({html.escape(severity)})</span>"


def _run_file(result: DQResult) -> str:
    stamp = result.checked_at.strftime("%Y%m%dT%H%M%S")
    safe = re.sub(r"[^A-Za-z0-9_.\-]", "_", f"{stamp}_{result.table}_{result.suite}_{result.run_id[:8]}")
    return safe


def render_run(result: DQResult) -> str:
    """One run's page, rendered only from the (already redacted) DQResult."""
    e = html.escape
    rows = []
    for o in result.outcomes:
        args = json.dumps(o.kwargs, default=str, ensure_ascii=False)
        detail = []
        if o.error:
            detail.append(f"could not run: {e(o.error)}")
        if o.unexpected_count is not None:
            pct = f" ({o.unexpected_percent:.2f}%)" if o.unexpected_percent is not None else ""
            detail.append(f"{o.unexpected_count} unexpected{pct}")
        if o.observed is not None:
            detail.append(f"observed {e(o.observed)}")
        if o.samples:
            detail.append("e.g. " + ", ".join(f"<code>{e(s)}</code>" for s in o.samples))
        if o.pii and not o.success:
            detail.append("personal data: values not shown")
        rows.append(
            f"<tr><td>{_status(o.success, o.severity)}</td><td><code>{e(o.type)}</code></td>"
            f"<td>{e(o.column or '')}</td><td><code>{e(args)}</code></td><td>{'<br>'.join(detail)}</td></tr>"
        )
    body = (
        f"<p><a href='../index.html'>all runs</a></p>"
        f"<h1>{e(result.table)} · {e(result.suite)}</h1>"
        f"<p>{_status(result.success, result.severity if result.blocking else 'warn')} · "
        f"{result.evaluated} expectations, {len(result.failed)} failed · suite severity {e(result.severity)} · "
        f"run {e(result.run_id)} · {e(result.checked_at.isoformat())} · {result.seconds:.1f}s</p>"
        "<table><tr><th>status</th><th>expectation</th><th>column</th><th>arguments</th><th>details</th></tr>"
        + "".join(rows) + "</table>"
    )
    return _page(f"{result.table} {result.suite}", body)


DOCS_INDEX = "index.jsonl"   # one line per run, appended: the index never re-reads every run's JSON
INDEX_ROWS = 2000            # runs shown on index.html, newest first; older ones stay under runs/


def write_docs(result: DQResult, docs_dir: str) -> Path:
    """Write the run page plus a JSON copy, append the run to the index and re-render index.html."""
    root = Path(docs_dir)
    runs = root / DOCS_RUNS
    runs.mkdir(parents=True, exist_ok=True)
    name = _run_file(result)
    data = result.to_json_dict()
    (runs / f"{name}.html").write_text(render_run(result), encoding="utf-8")
    (runs / f"{name}.json").write_text(json.dumps(data, default=str), encoding="utf-8")
    _index_entries(root, name, data)
    _write_index(root)
    return runs / f"{name}.html"


def _index_line(stem: str, d: dict) -> str:
    outcomes = d.get("outcomes", [])
    failed = [o for o in outcomes if not o.get("success")]
    return json.dumps({"checked_at": str(d.get("checked_at", "")), "stem": stem, "table": str(d.get("table")),
                       "suite": str(d.get("suite")), "evaluated": len(outcomes), "failed": len(failed),
                       "blocking": any(o.get("severity") == "error" for o in failed)}) + "\n"


def _index_entries(root: Path, stem: str, data: dict) -> None:
    """Append one run to runs/index.jsonl. Rebuilding index.html used to read every stored run's
    JSON for every suite, which grows without bound on a lake validated nightly. Docs written
    before the index existed are indexed once, the first time."""
    index = root / DOCS_RUNS / DOCS_INDEX
    if not index.exists():
        lines = []
        for path in sorted((root / DOCS_RUNS).glob("*.json")):
            if path.stem == stem:
                continue
            try:
                lines.append(_index_line(path.stem, json.loads(path.read_text(encoding="utf-8"))))
            except (OSError, ValueError):
                continue
        index.write_text("".join(lines), encoding="utf-8")
    with index.open("a", encoding="utf-8") as f:
        f.write(_index_line(stem, data))


def _write_index(root: Path) -> None:
    e = html.escape
    entries = []
    for line in (root / DOCS_RUNS / DOCS_INDEX).read_text(encoding="utf-8").splitlines():
        try:
            entries.append(json.loads(line))
        except ValueError:  # a line cut short by a killed writer
            continue
    entries.sort(key=lambda d: (d.get("checked_at", ""), d.get("stem", "")), reverse=True)
    rows = []
    for d in entries[:INDEX_ROWS]:
        rows.append(
            f"<tr><td>{e(d['checked_at'])}</td><td>{e(d['table'])}</td>"
            f"<td><a href='{DOCS_RUNS}/{e(d['stem'])}.html'>{e(d['suite'])}</a></td>"
            f"<td>{_status(not d['failed'], 'error' if d['blocking'] else 'warn')}</td>"
            f"<td>{d['evaluated'] - d['failed']}/{d['evaluated']}</td></tr>"
        )
    older = (f"<p>{len(entries) - INDEX_ROWS} older run(s) are not listed here; their pages are under "
             f"<code>{DOCS_RUNS}/</code>.</p>") if len(entries) > INDEX_ROWS else ""
    body = ("<h1>thinkfamily data quality</h1>"
            "<p>Values of personal-data columns are never shown.</p>"
            "<table><tr><th>checked at (UTC)</th><th>table</th><th>suite</th><th>status</th><th>passed</th></tr>"
            + "".join(rows) + "</table>" + older)
    (root / "index.html").write_text(_page("thinkfamily data quality", body), encoding="utf-8")

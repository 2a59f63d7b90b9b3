"""Data-quality wrapper: typed suites, severity, cost strategy, privacy of samples and docs."""
from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

import pytest

from thinkfamily import dq, lake
from thinkfamily.dq import ExpectationSpec, SuiteSpec, enforce, load_suite, run_suite
from thinkfamily.errors import ConfigError, DataQualityError

ROOT = Path(__file__).resolve().parents[1]
PLANTED = "Zebedee Quarrington-Smythe"  # a planted 'name' that must never leak


def exp(type_: str, severity=None, **kwargs) -> ExpectationSpec:
    return ExpectationSpec(type=type_, kwargs=kwargs, severity=severity)


@pytest.fixture(scope="module")
def people(spark):
    return spark.createDataFrame(
        [("r1", "Amy Jones", "F", 3), ("r2", PLANTED, "X", 5), ("r3", None, "M", 7), ("r4", "Bo Li", "Q", 9)],
        "record_key string, full_name string, sex string, score int",
    )


def test_passing_suite(people, tmp_path, caplog):
    suite = SuiteSpec(name="ok", expectations=[
        exp("expect_table_row_count_to_be_between", min_value=1, max_value=10),
        exp("expect_column_values_to_not_be_null", column="record_key"),
        exp("expect_column_values_to_be_between", column="score", min_value=0, max_value=10),
    ])
    with caplog.at_level(logging.INFO, logger="thinkfamily.dq"):
        result = run_suite(people, suite, pii_columns=["full_name"], table="silver/people", docs_dir=str(tmp_path))
        enforce(result)  # no exception
    assert result.success and result.evaluated == 3 and result.failed == []
    assert result.summary_line().startswith("dq silver/people suite=ok: passed 3/3 expectations")
    assert caplog.text.count("suite=ok: passed 3/3") == 1  # bug: run_suite and enforce both logged it
    assert not people.is_cached  # we cached for the run and let go afterwards


def test_failing_warn_suite_is_recorded_and_continues(people, caplog):
    suite = SuiteSpec(name="codes", severity="warn", expectations=[
        exp("expect_column_values_to_be_in_set", column="sex", value_set=["F", "M", "U"]),
        exp("expect_column_values_to_not_be_null", column="record_key"),
    ])
    with caplog.at_level(logging.INFO, logger="thinkfamily.dq"):
        result = run_suite(people, suite, pii_columns=[], table="bronze/people", docs_dir=None)
        enforce(result)
    assert caplog.text.count("FAILED 1/2 expectations (0 error, 1 warn)") == 1
    assert [r.levelname for r in caplog.records if "suite=codes" in r.message] == ["WARNING"]
    assert not result.success and result.evaluated == 2
    [bad] = result.failed
    assert (bad.type, bad.column, bad.severity) == ("expect_column_values_to_be_in_set", "sex", "warn")
    assert bad.unexpected_count == 2 and bad.unexpected_percent == pytest.approx(50.0)
    assert sorted(bad.samples) == ["Q", "X"]  # non-personal column: samples help the reader


def test_failing_error_suite_raises_readable_message(people):
    suite = SuiteSpec(name="keys", severity="error", expectations=[
        exp("expect_column_values_to_be_between", column="score", min_value=0, max_value=5),
        exp("expect_column_values_to_be_in_set", "warn", column="sex", value_set=["F", "M"]),
        exp("expect_column_to_exist", column="nhs_number"),
        exp("expect_column_values_to_not_be_null", column="upn"),
    ])
    result = run_suite(people, suite, pii_columns=[], table="silver/people", docs_dir=None)
    with pytest.raises(DataQualityError) as err:
        enforce(result)
    message = str(err.value)
    assert message.startswith("silver/people: data-quality suite 'keys' failed 3 blocking expectation(s): ")
    assert "expect_column_values_to_be_between(score): 2 unexpected (50.00%)" in message
    assert "expect_column_to_exist(nhs_number)" in message
    assert 'expect_column_values_to_not_be_null(upn) could not run: The column "upn" in BatchData does not exist.' in message
    assert "expect_column_values_to_be_in_set" not in message  # warn-level: logged, not blocking
    assert "\n" not in message


def test_pii_samples_never_in_result_nor_html(people, tmp_path):
    suite = SuiteSpec(name="names", severity="warn", expectations=[
        exp("expect_column_values_to_match_regex", column="full_name", regex="^[A-Z][a-z]+ [A-Z][a-z]+$"),
        exp("expect_column_values_to_not_be_in_set", column="full_name", value_set=[PLANTED]),
        exp("expect_column_values_to_not_be_null", column="full_name"),
        exp("expect_column_distinct_values_to_be_in_set", column="full_name", value_set=["Amy Jones"]),
    ])
    docs = tmp_path / "_dq" / "docs"
    result = run_suite(people, suite, pii_columns=["full_name"], table="silver/people", docs_dir=str(docs))
    assert len(result.failed) == 4
    regex, not_in_set, not_null, distinct = result.failed
    assert regex.unexpected_count == 1 and not_in_set.unexpected_count == 1 and not_null.unexpected_count == 1
    assert all(o.samples == () and o.pii and o.observed is None for o in result.failed)
    assert not_in_set.kwargs == {"column": "full_name", "value_set": dq.REDACTED}
    assert distinct.unexpected_count is None  # an aggregate: its observed distinct set is not kept
    assert PLANTED not in repr(result) and "Zebedee" not in result.summary_line()

    index = docs / "index.html"
    assert index.exists()
    pages = [index, *sorted((docs / "runs").iterdir())]
    assert any(p.suffix == ".html" and p != index for p in pages)
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert "Zebedee" not in text and "Quarrington" not in text, page.name
    run_page = next(p for p in pages if p.suffix == ".html" and p != index).read_text(encoding="utf-8")
    assert "personal data: values not shown" in run_page


def test_spark_error_text_is_withheld_for_personal_data():
    info = {"MetricConfigurationID(...)": {"raised_exception": True, "exception_message":
            "An error occurred while calling o1.collect.\n: org.apache.spark.SparkException: Job aborted: "
            f"org.apache.spark.SparkNumberFormatException: The value '{PLANTED}' cannot be cast to INT"}}
    assert dq._error_message(info, pii=True) == "raised SparkNumberFormatException (details withheld: personal data)"
    assert dq._error_message(info, pii=False).startswith("SparkNumberFormatException: The value ")
    assert dq._error_message({"raised_exception": False}, pii=False) is None


def test_index_lists_every_run(people, tmp_path):
    suite = SuiteSpec(name="rows", expectations=[exp("expect_table_row_count_to_be_between", min_value=1)])
    for table in ("bronze/a", "bronze/b"):
        run_suite(people, suite, pii_columns=[], table=table, docs_dir=str(tmp_path))
    index = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "bronze/a" in index and "bronze/b" in index
    assert len(list((tmp_path / "runs").glob("*.html"))) == 2


def test_index_is_appended_not_rebuilt_from_every_stored_run(people, tmp_path, monkeypatch):
    """Bug: each suite re-read every run JSON ever written to rebuild index.html (grows nightly)."""
    suite = SuiteSpec(name="rows", expectations=[exp("expect_table_row_count_to_be_between", min_value=1)])
    run_suite(people, suite, pii_columns=[], table="bronze/old", docs_dir=str(tmp_path))
    (tmp_path / "runs" / dq.DOCS_INDEX).unlink()          # docs written before the index existed
    run_suite(people, suite, pii_columns=[], table="bronze/a", docs_dir=str(tmp_path))
    lines = (tmp_path / "runs" / dq.DOCS_INDEX).read_text().splitlines()
    assert [json.loads(x)["table"] for x in lines] == ["bronze/old", "bronze/a"]  # the old run indexed once

    for stored in (tmp_path / "runs").glob("*.json"):
        stored.write_text("not json")                     # never read again
    monkeypatch.setattr(dq, "INDEX_ROWS", 2)
    run_suite(people, suite, pii_columns=[], table="bronze/b", docs_dir=str(tmp_path))
    index = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "bronze/b" in index and "bronze/a" in index and "bronze/old" not in index
    assert "1 older run(s) are not listed here" in index
    assert index.index("bronze/b") < index.index("bronze/a")  # newest first


def test_unknown_expectation_type_names_file_and_index(tmp_path):
    path = tmp_path / "suite.yaml"
    path.write_text(
        "name: s\nseverity: warn\nexpectations:\n"
        "  - {type: expect_column_values_to_not_be_null, kwargs: {column: a}}\n"
        "  - {type: expect_column_values_to_be_nul, kwargs: {column: a}}\n"
    )
    with pytest.raises(ConfigError) as err:
        load_suite(path)
    assert str(err.value) == (
        f"{path}: expectations[1].type: unknown expectation type 'expect_column_values_to_be_nul'; "
        "did you mean 'expect_column_values_to_be_null'?"
    )


def test_bad_kwargs_and_severity_are_config_errors(tmp_path):
    path = tmp_path / "suite.yaml"
    path.write_text("name: s\nexpectations:\n  - {type: expect_column_values_to_be_in_set, kwargs: {colum: a}}\n")
    with pytest.raises(ConfigError, match=r"suite.yaml: expectations\[0\]: expect_column_values_to_be_in_set: "
                                          r"kwargs.column: field required.*kwargs.colum: extra fields not permitted"):
        load_suite(path)
    with pytest.raises(ConfigError, match=r"severity: 'fatal' is not one of 'error' or 'warn'"):
        dq.parse_suite({"name": "s", "severity": "fatal", "expectations": [
            {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1}}]}, "schemas/sources/x.yaml")


def test_example_suite_loads():
    suite = load_suite(ROOT / "conf" / "dq" / "example_person_records.yaml")
    assert suite.severity == "error" and len(suite.expectations) == 5
    assert suite.severity_of(suite.expectations[3]) == "warn"


def test_results_rows_shape_and_delta_append(spark, env, people):
    suite = SuiteSpec(name="shape", severity="warn", expectations=[
        exp("expect_column_values_to_not_be_null", column="full_name"),
        exp("expect_column_values_to_not_be_null", column="record_key"),
    ])
    result = run_suite(people, suite, pii_columns=["full_name"], table="silver/people", docs_dir=None, run_id="run-1")
    rows = result.to_rows()
    assert [r[:8] for r in rows] == [
        ("run-1", "silver/people", "shape", "expect_column_values_to_not_be_null", "full_name", "warn", False, 1),
        ("run-1", "silver/people", "shape", "expect_column_values_to_not_be_null", "record_key", "warn", True, None),
    ]
    assert all(len(r) == len(dq.RESULT_COLUMNS) and isinstance(r[-1], dt.datetime) for r in rows)

    assert dq.write_results(spark, env, [result, result]) == 4
    table = lake.read(spark, env.table("_dq", "results"))
    assert tuple(table.columns) == dq.RESULT_COLUMNS
    assert table.filter("run_id = 'run-1' AND NOT success").count() == 2

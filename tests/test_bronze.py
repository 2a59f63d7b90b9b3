"""Bronze job: every format lands, re-runs are idempotent, duplicates and bad rows are explained."""
from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from bronze_helpers import add_files, land, make_project
from pyspark.sql import functions as F

from thinkfamily import lake

PEOPLE = """
name: people
agency: council
owner: data@example.org
format: csv
options: {delimiter: ";", encoding: cp1252}
columns:
  - {name: person_id, key: true}
  - {name: forename, pii: direct}
  - {name: date_of_birth, type: date, format: dd/MM/yyyy, pii: quasi, required: true}
  - {name: amount, type: int}
"""
EVENTS = """
name: events
agency: police
owner: police@example.org
format: json
columns:
  - {name: event_id, key: true}
  - {name: event_date, type: date}
  - {name: severity, type: int}
"""
VISITS = """
name: visits
agency: nhs
owner: nhs@example.org
format: xml
options: {row_tag: visit, root_tag: visits}
columns:
  - {name: visit_id, key: true}
  - {name: seen_at, type: timestamp, format: "yyyy-MM-dd HH:mm"}
"""
BENEFITS = """
name: benefits
agency: dwp
owner: dwp@example.org
format: fixed_width
options: {header: false}
columns:
  - {name: claim_id, key: true, start: 1, width: 5}
  - {name: benefit, start: 6, width: 4}
  - {name: weekly, type: double, start: 10, width: 7}
"""
TENANCIES = """
name: tenancies
agency: housing
owner: housing@example.org
format: parquet
columns:
  - {name: tenancy_id, key: true}
  - {name: start_date, type: date}
  - {name: rent, type: double}
"""


def parquet_bytes(table: dict) -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.table(table), buf)
    return buf.getvalue()


FILES = {
    # cp1252, ';', CRLF, a quoted newline, an invalid date, a missing key, a short row
    "people/2024-01.csv": ("person_id;forename;date_of_birth;amount\r\n"
                           "P1;José;03/04/2011;10\r\n"
                           'P2;"Anne\r\nMarie";31/02/2011;20\r\n'
                           ";Bob;01/01/2000;5\r\n"
                           "P4;Zoë;2011-04-03;1\r\n"
                           "P5;Al\r\n"
                           "P6;Eve;05/06/2012;\r\n").encode("cp1252"),
    "events/day1.jsonl": ('{"event_id": "E1", "event_date": "2024-01-02", "severity": 3}\n'
                          '{"event_id": "E2", "event_date": "2024-01-03", "severity": "2", "note": {"a": 1}}\n'
                          '{"event_id": "E3", "event_date": \n'
                          '\n'
                          '{"event_date": "2024-01-05"}\n'
                          '{"event_id": "E6", "severity": "high"}\n'),
    "visits/v.xml": ('<?xml version="1.0"?>\n<visits>\n'
                     '  <visit><visit_id>V1</visit_id><seen_at>2024-02-01 10:30</seen_at></visit>\n'
                     '  <visit>\n    <visit_id>V2</visit_id>\n    <seen_at>yesterday</seen_at>\n  </visit>\n'
                     '  <visit><visit_id>V&amp;3</visit_id><seen_at>2024-02-03 09:00</seen_at><ward>A</ward></visit>\n'
                     '</visits>\n'),
    "benefits/b.txt": "C0001UC   123.45\nC0002JSA   99.9x\nC0003PIP    10.00 overflow\n",
    "tenancies/t.parquet": parquet_bytes({"tenancy_id": ["T1", "T2"], "start_date": ["2020-01-01", "not a date"],
                                          "rent": [100.5, 90.0], "landlord": ["council", "ha"]}),
}
SOURCES = {"people": PEOPLE, "events": EVENTS, "visits": VISITS, "benefits": BENEFITS, "tenancies": TENANCIES}


@pytest.fixture(scope="module")
def landed(spark, env, tmp_path_factory):
    """One project with every format, landed once; tests inspect the outcome."""
    tmp = tmp_path_factory.mktemp("bronze_formats")
    project = make_project(tmp, env, SOURCES, FILES)
    results = land(spark, project)
    return project, tmp, {r.source: r for r in results}


def quarantine(spark, env, source):
    return {r.line: r for r in lake.read(spark, env.table("bronze", "_quarantine"))
            .where(F.col("source") == source).collect()}


def test_every_format_lands_with_lineage(spark, landed):
    env, _, results = landed
    assert {s: (r.error, r.files_new, r.rows_landed, r.rows_quarantined) for s, r in results.items()} == {
        "people": (None, 1, 2, 4),
        "events": (None, 1, 2, 3),
        "visits": (None, 1, 2, 1),
        "benefits": (None, 1, 1, 2),
        "tenancies": (None, 1, 1, 1),
    }
    people = lake.read(spark, env.table("bronze", "people")).orderBy("_line").collect()
    assert [(r.person_id, r.forename, str(r.date_of_birth), r.amount, r._line) for r in people] == [
        ("P1", "José", "2011-04-03", 10, 2), ("P6", "Eve", "2012-06-05", None, 8)]
    assert all(r._batch_id and r._ingested_at and len(r._row_hash) == 64 for r in people)
    assert people[0]._source_file.endswith("people/2024-01.csv")
    visits = lake.read(spark, env.table("bronze", "visits")).orderBy("_line").collect()
    assert [(v.visit_id, v._line, v._rescued) for v in visits] == [("V1", 3, None), ("V&3", 8, '{"ward":"A"}')]
    events = lake.read(spark, env.table("bronze", "events")).orderBy("_line").collect()
    assert [(e.event_id, str(e.event_date), e.severity, e._rescued) for e in events] == [
        ("E1", "2024-01-02", 3, None), ("E2", "2024-01-03", 2, '{"note":"{\\"a\\":1}"}')]
    tenancy = lake.read(spark, env.table("bronze", "tenancies")).first()
    assert (tenancy.tenancy_id, tenancy.rent, json.loads(tenancy._rescued)) == ("T1", 100.5, {"landlord": "council"})
    claim = lake.read(spark, env.table("bronze", "benefits")).first()
    assert (claim.claim_id, claim.benefit, claim.weekly) == ("C0001", "UC", 123.45)


def test_quarantine_reasons_are_readable(spark, landed):
    env, _, _ = landed
    people = quarantine(spark, env, "people")
    assert {line: r.reason for line, r in people.items()} == {
        3: "column date_of_birth: '31/02/2011' is not a date in format dd/MM/yyyy",
        5: "column person_id: key value is missing",
        6: "column date_of_birth: '2011-04-03' is not a date in format dd/MM/yyyy",
        7: "line has 2 fields, expected 4",
    }
    assert people[3].raw == 'P2;"Anne\nMarie";31/02/2011;20'
    events = quarantine(spark, env, "events")
    assert {line: r.reason for line, r in events.items()} == {
        3: "line is not a JSON object",
        5: "column event_id: key value is missing",
        6: "column severity: 'high' is not an int",
    }
    assert quarantine(spark, env, "visits")[4].reason == "column seen_at: 'yesterday' is not a timestamp in format yyyy-MM-dd HH:mm"
    benefits = quarantine(spark, env, "benefits")
    assert benefits[2].reason == "column weekly: '99.9x' is not a double"
    assert benefits[3].reason == "line has 26 characters, the layout is 16 wide"
    assert quarantine(spark, env, "tenancies")[2].reason == "column start_date: 'not a date' is not a date"


def test_reconciliation_holds_per_file(spark, landed):
    env, _, _ = landed
    log = lake.read(spark, env.table("bronze", "_ingestion_log")).collect()
    assert len(log) == 5 and all(r.status == "landed" for r in log)
    for r in log:
        assert r.rows_read == r.rows_landed + r.rows_quarantined
        in_bronze = lake.read(spark, env.table("bronze", r.source)).where(F.col("_source_file") == r.path).count()
        in_quarantine = (lake.read(spark, env.table("bronze", "_quarantine"))
                         .where(F.col("file") == r.path).count())
        assert (in_bronze, in_quarantine) == (r.rows_landed, r.rows_quarantined), r.path


def test_rerun_without_new_files_changes_nothing(spark, landed):
    env, _, _ = landed
    tables = [env.table("bronze", t) for t in (*SOURCES, "_quarantine", "_ingestion_log")]
    before = [lake.version(spark, t) for t in tables]
    results = land(spark, env)
    assert [lake.version(spark, t) for t in tables] == before
    assert all(r.files_new == 0 and r.files_skipped == 1 and r.rows_read == 0 for r in results)


def test_duplicate_under_new_name_and_changed_file(spark, landed):
    env, tmp, _ = landed
    people_table = env.table("bronze", "people")
    before = lake.version(spark, people_table)
    add_files(tmp, {"people/2024-01-copy.csv": FILES["people/2024-01.csv"]})
    (result,) = land(spark, env, sources=["people"])
    assert (result.files_new, result.files_duplicate, result.rows_landed) == (0, 1, 0)
    assert lake.version(spark, people_table) == before
    dup = (lake.read(spark, env.table("bronze", "_ingestion_log"))
           .where(F.col("path").endswith("2024-01-copy.csv")).first())
    assert dup.status == "duplicate" and dup.duplicate_of.endswith("people/2024-01.csv")

    add_files(tmp, {"people/2024-01.csv": "person_id;forename;date_of_birth;amount\nP7;Kim;01/01/2015;3\n"})
    (result,) = land(spark, env, sources=["people"])
    assert (result.files_new, result.rows_landed) == (1, 1)
    versions = (lake.read(spark, env.table("bronze", "_ingestion_log"))
                .where(F.col("path").endswith("people/2024-01.csv")).select("sha256").distinct().count())
    assert versions == 2


def test_new_source_by_yaml_alone(spark, env, tmp_path):
    project = make_project(tmp_path, env, {"school_meals": """
        name: school_meals
        agency: education
        owner: schools@example.org
        format: csv
        columns:
          - {name: pupil_ref, key: true}
          - {name: meals, type: int}
        """}, {"school_meals/term1.csv": "pupil_ref,meals\nA1,12\nA2,9\n"})
    (result,) = land(spark, project)
    assert (result.source, result.rows_landed, result.error) == ("school_meals", 2, None)
    assert lake.read(spark, project.table("bronze", "school_meals")).count() == 2


def test_missing_required_column_and_drift_reject(spark, env, tmp_path):
    yaml = """
        name: referrals
        agency: csc
        owner: csc@example.org
        format: csv
        drift: reject
        columns:
          - {name: referral_id, key: true}
          - {name: referral_date, type: date, required: true}
        """
    project = make_project(tmp_path, env, {"referrals": yaml}, {
        "referrals/a.csv": "referral_id,referral_date,colour\nR1,2024-01-01,red\n",
        "referrals/b.csv": "referral_id;referral_date\nR2;2024-01-01\n",
        "referrals/c.csv": "referral_id,referral_date\nR3,2024-01-01\n",
    })
    (result,) = land(spark, project)
    assert (result.files_new, result.files_failed, result.rows_landed) == (1, 2, 1)
    reasons = {o.facts.path.rsplit("/", 1)[1]: o.reason for o in result.files}
    assert reasons["a.csv"] == "unexpected column(s) ['colour'] (drift: reject)"
    assert reasons["b.csv"].startswith("missing required column(s) ['referral_id', 'referral_date']")
    assert "splits on ';'" in reasons["b.csv"]
    # fixing the YAML (drift: rescue) retries the failed file; the other is still skipped
    (tmp_path / "schemas/sources/referrals.yaml").write_text(
        (tmp_path / "schemas/sources/referrals.yaml").read_text().replace("drift: reject", "drift: rescue"))
    from thinkfamily.sources import _load_all

    _load_all.cache_clear()
    (result,) = land(spark, project)
    assert (result.files_new, result.files_failed, result.files_skipped) == (1, 1, 1)


def test_cli_run_bronze_prints_a_table(spark, env, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from thinkfamily import cli, runcli

    project = make_project(tmp_path, env, {"gp": """
        name: gp
        agency: nhs
        owner: nhs@example.org
        format: csv
        columns: [{name: reg_id, key: true}]
        """}, {"gp/x.csv": "reg_id\nG1\n"})
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "t.yaml").write_text(
        f"name: t\nspark: {{master: 'local[2]'}}\npaths: {{lake: lake, raw: data/raw, jars: {env.jars_dir}}}\n"
        "dq: {enabled: false}\n")
    monkeypatch.setenv("THINKFAMILY_HOME", str(project.root))
    cli.cli.add_command(runcli.run)
    out = CliRunner().invoke(cli.cli, ["--env", "t", "run", "bronze", "--source", "gp"])
    assert out.exit_code == 0, out.output
    rows = [line.split() for line in out.output.splitlines() if line.startswith("gp ")]
    assert rows == [["gp", "1", "0", "0", "0", "1", "1", "0"]], out.output


def test_bronze_suite_runs_and_warns_without_blocking(spark, env, tmp_path):
    project = make_project(tmp_path, env, {"asb": """
        name: asb
        agency: police
        owner: police@example.org
        format: csv
        columns:
          - {name: asb_ref, key: true}
          - {name: outcome, allowed: [warning, contract]}
        """}, {"asb/a.csv": "asb_ref,outcome\nA1,warning\nA1,caution\n"}, dq=True)
    (result,) = land(spark, project)
    assert (result.error, result.rows_landed) == (None, 2)
    assert "FAILED 2/" in result.dq
    assert "expect_column_values_to_be_in_set(outcome): 1 unexpected" in result.dq
    assert "expect_compound_columns_to_be_unique(asb_ref,_source_file)" in result.dq
    assert lake.read(spark, project.table("_dq", "results")).where(~F.col("success")).count() == 2


def test_rerun_after_a_crash_before_the_log_commit_lands_nothing_twice(spark, env, tmp_path, monkeypatch):
    """The shared tables are written once per run, log last. Kill the run between the quarantine
    and the log commit: the re-run finds the files unlogged, lands them again, and Delta's
    idempotent append plus the batch check keep bronze and quarantine free of duplicates."""
    from jobs import bronze

    project = make_project(tmp_path, env, {"people": PEOPLE, "events": EVENTS},
                           {k: v for k, v in FILES.items() if k.split("/")[0] in ("people", "events")})
    real_create = spark.createDataFrame

    def die_on_log(data, schema=None, *a, **kw):
        if schema is bronze.LOG_SCHEMA:
            raise KeyboardInterrupt("killed before the ingestion-log commit")
        return real_create(data, schema, *a, **kw)

    monkeypatch.setattr(spark, "createDataFrame", die_on_log)
    with pytest.raises(KeyboardInterrupt):
        land(spark, project)
    monkeypatch.undo()
    assert not lake.exists(spark, project.table("bronze", "_ingestion_log"))
    first = {s: lake.read(spark, project.table("bronze", s)).count() for s in ("people", "events", "_quarantine")}

    results = {r.source: r for r in land(spark, project)}
    again = {s: lake.read(spark, project.table("bronze", s)).count() for s in ("people", "events", "_quarantine")}
    assert again == first and first["_quarantine"] > 0
    assert all(r.files_new == 1 for r in results.values())
    log = lake.read(spark, project.table("bronze", "_ingestion_log")).collect()
    assert sorted(r.source for r in log) == ["events", "people"]
    assert all(r.rows_read == r.rows_landed + r.rows_quarantined for r in log)
    assert sum(r.rows_landed for r in log) == first["people"] + first["events"]

"""The silver job end to end on tiny inline bronze tables in a private test lake.

One module-scoped run; then: what each table holds, pseudonymisation, no cleartext outside the
restricted tables (a scan of every silver/gold Delta table), idempotent re-runs (no new Delta
version), incremental MERGE of a later batch, and the GX suites.
"""
from __future__ import annotations

import datetime as dt
import logging
import re
from pathlib import Path

import pytest
from pyspark.sql import functions as F
from pyspark.sql import types as T
from test_mapping import BRONZE_SCHEMA, ROWS, T0, gazetteer_source, police_da

from jobs import silver
from thinkfamily import dq, lake, pseudonymise
from thinkfamily.errors import ConfigError

# Planted identifiers: they must never appear outside *_identifiable tables.
PLANTED_TEXT = ["Zoë", "zoe", "O'Brien", "obrien", "O’BRIEN", "9434765919", "943 476 5919", "John Paul",
                "2010-03-07", "07/03/2010", "1980-01-02"]
PLANTED_DATES = [dt.date(2010, 3, 7), dt.date(1980, 1, 2)]
SILVER_TABLES = ("person_record_identifiable", "person_record", "event", "relationship", "address")


def _bronze_rows(rows, batch, ingested, first_line=2):
    return [(*r, "f.csv", first_line + i, batch, ingested, "h", None) for i, r in enumerate(rows)]


def _gazetteer_rows(batch):
    return [(100012345, "12 High St", None, "Bristol", "BS1 4DJ", "Central", "g.csv", 2, batch, T0, "h", None),
            (100054321, "1 Park Road", "Flat 2", "Bristol", "BS2 0AA", "Easton", "g.csv", 3, batch, T0, "h", None)]


GAZ_SCHEMA = ("uprn long, line1 string, line2 string, town string, pc string, ward string, "
              "_source_file string, _line long, _batch_id string, _ingested_at timestamp, _row_hash string, _rescued string")


@pytest.fixture(scope="module")
def silver_env(env, tmp_path_factory):
    return env.with_paths(lake=str(tmp_path_factory.mktemp("silver_lake")))


@pytest.fixture(scope="module")
def first_run(spark, silver_env, caplog_module):
    e = silver_env
    lake.append(spark.createDataFrame(_bronze_rows(ROWS, "b1", T0), BRONZE_SCHEMA), e.table("bronze", "police_da"))
    lake.append(spark.createDataFrame(_gazetteer_rows("g1"), GAZ_SCHEMA), e.table("bronze", "gazetteer"))
    pseudonymise._announced.clear()
    return silver.run(spark, e, schemas=[police_da(), gazetteer_source()])


@pytest.fixture(scope="module")
def caplog_module():
    """Collects log records for the whole module (the demo-key announcement happens in the first run)."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    handler = Keep(level=logging.INFO)
    logging.getLogger().addHandler(handler)
    yield records
    logging.getLogger().removeHandler(handler)


def read(spark, e, name):
    return lake.read(spark, e.table("silver", name))


def test_first_run_counts_and_report(first_run):
    assert (first_run["person_records"], first_run["events"], first_run["relationships"], first_run["addresses"]) == (4, 3, 1, 2)
    assert first_run["quarantined"] == 1  # DA3 has no incident date
    text = "\n".join(first_run["report_lines"])
    assert "person_record(_identifiable): +4 mentions" in text and "event: +3" in text
    assert not any(p in text for p in PLANTED_TEXT)


def test_tables_follow_the_contract(spark, silver_env, first_run):
    from thinkfamily import mapping

    assert read(spark, silver_env, "person_record_identifiable").columns == mapping.PERSON_RECORD_IDENTIFIABLE_COLUMNS
    assert read(spark, silver_env, "person_record").columns == mapping.PERSON_RECORD_COLUMNS
    assert read(spark, silver_env, "event").columns == mapping.EVENT_COLUMNS
    assert read(spark, silver_env, "relationship").columns == mapping.RELATIONSHIP_COLUMNS
    assert read(spark, silver_env, "address").columns == mapping.ADDRESS_COLUMNS


def test_person_record_is_tokenised_and_uprn_found(spark, silver_env, first_run):
    key = pseudonymise.pseudonymisation_key(silver_env)
    pr = {r.record_id: r for r in read(spark, silver_env, "person_record").collect()}
    zoe = pr["police_da|DA1|victim"]
    assert zoe.nhs_token == pseudonymise.token("9434765919", key, "nhs_number")
    assert zoe.first_name_token == pseudonymise.token("zoe", key, "first_name")
    assert zoe.dob_token == pseudonymise.token("2010-03-07", key, "dob")
    assert (zoe.birth_year, zoe.sex, zoe.postcode_district) == (2010, "F", "BS1")
    assert zoe.uprn_token == pseudonymise.token("100012345", key, "uprn")
    ident = {r.record_id: r for r in read(spark, silver_env, "person_record_identifiable").collect()}
    assert ident["police_da|DA1|victim"].uprn == "100012345"
    assert ident["police_da|DA2|victim"].nhs_number is None and ident["police_da|DA2|victim"].nhs_number_valid is False


def test_demo_key_is_announced_once(caplog_module, first_run):
    said = [r for r in caplog_module if "demo key" in r.getMessage()]
    assert len(said) == 1


def test_quarantine_holds_keys_and_reason(spark, silver_env, first_run):
    rows = [tuple(r) for r in read(spark, silver_env, "_quarantine").select("record_id", "target", "reason").collect()]
    assert rows == [("police_da|DA3|victim", "event", "da_incident: column incident_date: no usable event date")]


def _delta_tables(root: Path) -> list[Path]:
    return [p.parent for p in root.glob("*/*/_delta_log")]


def scan_for_cleartext(spark, lake_root: str) -> list[str]:
    """Columns of silver/gold Delta tables (other than *_identifiable) holding a planted identifier.

    One query per table: every text column (map keys and values included) against all planted
    strings, every date column against the planted DOBs."""
    pattern = "|".join(re.escape(p.lower()) for p in PLANTED_TEXT)
    found = []
    for path in _delta_tables(Path(lake_root)):
        if path.parent.name not in ("silver", "gold") or path.name.endswith("_identifiable"):
            continue
        df = lake.read(spark, str(path))
        checks = {}
        for f in df.schema.fields:
            col = F.col(f"`{f.name}`")
            if isinstance(f.dataType, T.MapType):
                text = F.concat_ws("\u001f", F.map_keys(col).cast("array<string>"), F.map_values(col).cast("array<string>"))
                checks[f.name] = F.lower(text).rlike(pattern)
            elif isinstance(f.dataType, T.StringType):
                checks[f.name] = F.lower(col).rlike(pattern)
            elif isinstance(f.dataType, T.DateType):
                checks[f.name] = col.isin(PLANTED_DATES)
        if not checks:
            continue
        row = df.select(*[F.max(F.coalesce(c, F.lit(False)).cast("int")).alias(n) for n, c in checks.items()]).first()
        found += [f"{path.parent.name}/{path.name}.{n}" for n in checks if row[n]]
    return found


def test_no_cleartext_outside_restricted_tables(spark, silver_env, first_run):
    scanned = [p.name for p in _delta_tables(Path(silver_env.lake)) if p.parent.name == "silver"]
    assert {"person_record", "event", "relationship", "address", "_quarantine", "_processed_batches"} <= set(scanned)
    assert scan_for_cleartext(spark, silver_env.lake) == []
    # the scan does find them where they are allowed to be
    ident = read(spark, silver_env, "person_record_identifiable")
    assert ident.where(F.col("nhs_number") == "9434765919").count() == 1


def test_data_docs_show_no_identifiers(silver_env, first_run):
    docs = Path(dq.docs_path(silver_env))
    text = "".join(p.read_text(encoding="utf-8") for p in docs.rglob("*") if p.is_file())
    assert "silver_person_record" in text
    assert not any(p in text for p in PLANTED_TEXT)


def _versions(spark, e):
    return {n: lake.version(spark, e.table("silver", n)) for n in (*SILVER_TABLES, "_quarantine", "_processed_batches")}


def test_rerun_changes_nothing(spark, silver_env, first_run):
    before = _versions(spark, silver_env)
    again = silver.run(spark, silver_env, schemas=[police_da(), gazetteer_source()])
    assert again["batches"] == 0 and "up to date" in again["report_lines"][-1]
    assert _versions(spark, silver_env) == before


def test_later_batch_is_merged_incrementally(spark, silver_env, first_run):
    later = dt.datetime(2024, 4, 1, 8, 0)
    da2 = list(ROWS[1])
    da2[2] = "Smyth"  # surname corrected in the re-sent record
    da4 = ("DA4", "Amy", "Ng", "2012-05-05", "F", None, "BS2 0AA", "1 Park Road", None, None, None, None,
           dt.date(2024, 3, 20), "LOW", None)
    lake.append(spark.createDataFrame(_bronze_rows([tuple(da2), da4], "b2", later), BRONZE_SCHEMA),
                silver_env.table("bronze", "police_da"))
    before = _versions(spark, silver_env)
    out = silver.run(spark, silver_env, schemas=[police_da(), gazetteer_source()])
    assert (out["batches"], out["person_records"], out["events"]) == (1, 2, 2)
    after = _versions(spark, silver_env)
    assert after["address"] == before["address"]  # the gazetteer had no new batch
    assert all(after[t] == before[t] + 1 for t in ("person_record_identifiable", "person_record", "event"))
    ident = read(spark, silver_env, "person_record_identifiable")
    assert ident.count() == 5
    assert ident.where(F.col("record_id") == "police_da|DA2|victim").first().last_name == "Smyth"
    assert read(spark, silver_env, "event").count() == 4


def test_only_named_sources_run_and_unknown_transform_is_config_error(spark, silver_env, first_run):
    bad = police_da(transform="no_such_transform")
    with pytest.raises(ConfigError, match=r"police_da.yaml: silver.transform: 'no_such_transform'"):
        silver.run(spark, silver_env, schemas=[bad])


def test_person_suite_catches_bad_rows(spark):
    bad = spark.createDataFrame(
        [("r1", "M", "BS1 4DJ", True, "9434765919", dt.date(2010, 1, 1)),
         ("r1", "Q", "bs1 4dj", True, "9434765918", dt.date(1850, 1, 1))],
        "record_id string, sex string, postcode string, nhs_number_valid boolean, nhs_number string, dob date")
    res = dq.run_suite(silver.person_checks(bad, F.current_date()), silver.person_suite(),
                       pii_columns=silver.PII_COLUMNS, table="t", docs_dir=None)
    failed = sorted(o.column for o in res.blocking)
    assert failed == ["dob_in_range", "nhs_check", "postcode", "record_id", "sex"]


def test_event_suite_needs_a_person_and_no_future_dates(spark):
    events = spark.createDataFrame(
        [("e1", "r1", "da_incident", dt.date(2024, 1, 1)), ("e2", "r9", "da_incident", dt.date(2999, 1, 1))],
        "event_id string, record_id string, event_type string, event_date date")
    ids = spark.createDataFrame([("r1",)], "record_id string")
    res = dq.run_suite(silver.event_checks(events, ids, F.current_date()), silver.event_suite(["da_incident"]),
                       pii_columns=silver.PII_COLUMNS, table="t", docs_dir=None)
    assert sorted(o.column for o in res.blocking) == ["has_person", "not_future"]


def test_new_batches_come_from_the_ingestion_log_when_bronze_wrote_one(spark, env, tmp_path):
    """Listing new batches used to scan every bronze table (29 s on the small city, even with nothing new)."""
    from jobs.bronze import LOG_SCHEMA, LOG_TABLE

    e = env.with_paths(lake=str(tmp_path / "lake"))
    lake.append(spark.createDataFrame(_bronze_rows(ROWS[:1], "b0", T0) + _bronze_rows(ROWS[1:2], "b_unlogged", T0),
                                      BRONZE_SCHEMA), e.table("bronze", "police_da"))
    lake.append(spark.createDataFrame(_gazetteer_rows("g1"), GAZ_SCHEMA), e.table("bronze", "gazetteer"))
    srcs = [police_da(), gazetteer_source()]
    # no log (a lake written by another tool): the bronze tables themselves are read
    assert silver.new_batches(spark, e, srcs, done={("police_da", "b0")}) == {
        "police_da": ["b_unlogged"], "gazetteer": ["g1"]}

    def log_row(source, batch, status, landed):
        return (source, f"{source}/{batch}.csv", "sha", 10, T0, "hash", batch, T0, status, None, None, 3, landed,
                3 - landed, [], [], 1)

    lake.append(spark.createDataFrame([
        log_row("police_da", "b0", "landed", 3),        # already processed
        log_row("police_da", "b1", "landed", 2),        # new
        log_row("police_da", "b2", "failed", 0),        # nothing landed
        log_row("police_da", "b3", "landed", 0),        # every row quarantined: nothing in bronze
        log_row("gazetteer", "g1", "landed", 2),        # new
        log_row("school_census", "s1", "landed", 5),    # not asked for
    ], LOG_SCHEMA), e.table("bronze", LOG_TABLE))
    assert silver.new_batches(spark, e, srcs, done={("police_da", "b0")}) == {
        "police_da": ["b1"], "gazetteer": ["g1"]}
    assert silver.new_batches(spark, e, [], done=set()) == {}

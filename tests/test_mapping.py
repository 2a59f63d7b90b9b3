"""The YAML-driven mapping engine on tiny inline bronze frames (one golden test per canonical table)."""
from __future__ import annotations

import datetime as dt

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from thinkfamily import mapping, transforms_registry
from thinkfamily.errors import ConfigError
from thinkfamily.sources import SourceSchema

TYPES = {"da_incident": {"category": "domestic_abuse"}, "cs_referral": {"category": "children_need_help"}}
T0 = dt.datetime(2024, 3, 1, 9, 30)


def police_da(**silver_overrides) -> SourceSchema:
    """A domestic-abuse incident extract naming a victim and (sometimes) a perpetrator."""
    silver = {
        "persons": [
            {"role": "victim", "fields": {"first_name": "v_forename", "last_name": "v_surname", "dob": "v_dob",
                                          "sex": "v_sex", "nhs_number": "v_nhs", "postcode": "v_postcode",
                                          "address_line1": "v_address", "person_ref": "v_pid"}},
            {"role": "perpetrator", "fields": {"full_name": "p_name", "dob": "p_dob", "sex": "p_sex"},
             "when": "p_name IS NOT NULL"},
        ],
        "events": [
            {"event_type": "da_incident", "date": "incident_date", "person_role": "victim", "code": "risk",
             "attributes": ["risk", "weapon"]},
            {"event_type": "da_incident", "date": "incident_date", "person_role": "perpetrator", "code": "risk"},
        ],
        "relationships": [{"from_role": "perpetrator", "to_role": "victim", "relationship": "partner"}],
    }
    silver.update(silver_overrides)
    return SourceSchema.model_validate({
        "name": "police_da", "agency": "police", "owner": "da@example.org", "format": "csv",
        "columns": [
            {"name": "incident_ref", "key": True},
            {"name": "v_forename", "pii": "direct"}, {"name": "v_surname", "pii": "direct"},
            {"name": "v_dob", "pii": "quasi"}, {"name": "v_sex"}, {"name": "v_nhs", "pii": "direct"},
            {"name": "v_postcode", "pii": "quasi"}, {"name": "v_address", "pii": "direct"}, {"name": "v_pid"},
            {"name": "p_name", "pii": "direct"}, {"name": "p_dob", "pii": "quasi"}, {"name": "p_sex"},
            {"name": "incident_date", "type": "date"}, {"name": "risk"}, {"name": "weapon", "type": "boolean"},
        ],
        "silver": silver,
    })


BRONZE_SCHEMA = (
    "incident_ref string, v_forename string, v_surname string, v_dob string, v_sex string, v_nhs string, "
    "v_postcode string, v_address string, v_pid string, p_name string, p_dob string, p_sex string, "
    "incident_date date, risk string, weapon boolean, "
    "_source_file string, _line long, _batch_id string, _ingested_at timestamp, _row_hash string, _rescued string"
)


def bronze(spark, rows):
    lineage = ("f.csv", None, "b1", T0, "h", None)
    full = [(*r, *lineage[:1], i + 2, *lineage[2:]) for i, r in enumerate(rows)]
    return spark.createDataFrame(full, BRONZE_SCHEMA)


ROWS = [
    # ref, forename, surname, dob, sex, nhs, postcode, address, pid, perp, perp dob, perp sex, date, risk, weapon
    ("DA1", " zoë ", "O’BRIEN", "07/03/2010", "female", "943 476 5919", "bs14dj", "12 High St.", "P9",
     "SMITH, John Paul", "1980-01-02", "1", dt.date(2024, 2, 1), "HIGH", True),
    ("DA2", "bob", "smith", "31/02/2010", "M", "9434765918", "nonsense", None, None,
     None, None, None, dt.date(2024, 2, 2), "STANDARD", None),
    ("DA3", "Ann", "Lee", "2030-01-01", "x", None, "BS2 0AA", "1 Park Rd", None,
     None, None, None, None, "LOW", False),
]


def test_person_record_identifiable_golden(spark):
    src = police_da()
    out = (bronze(spark, ROWS).transform(mapping.person_mentions(src))
           .transform(mapping.standardise_persons).transform(mapping.with_uprn(None)))
    d = dt.date
    expected = spark.createDataFrame([
        ("police_da|DA1|victim", "police_da", "DA1", "victim", "P9", "Zoë", "zoe", "zoe", None, "O'Brien", "obrien",
         d(2010, 3, 7), "ok", "F", "9434765919", True, None, None, None, None,
         "12 HIGH STREET", "BS1 4DJ", "BS1", None, None, d(2024, 2, 1), "b1", T0),
        ("police_da|DA2|victim", "police_da", "DA2", "victim", None, "Bob", "bob", "robert", None, "Smith", "smith",
         None, "impossible", "M", None, False, None, None, None, None,
         None, None, None, None, None, d(2024, 2, 2), "b1", T0),
        ("police_da|DA3|victim", "police_da", "DA3", "victim", None, "Ann", "ann", "anne", None, "Lee", "lee",
         None, "future", "U", None, None, None, None, None, None,
         "1 PARK ROAD", "BS2 0AA", "BS2", None, None, d(2024, 3, 1), "b1", T0),
        ("police_da|DA1|perpetrator", "police_da", "DA1", "perpetrator", None, "John", "john", "john", "Paul", "Smith",
         "smith", d(1980, 1, 2), "ok", "M", None, None, None, None, None, None,
         None, None, None, None, None, d(2024, 2, 1), "b1", T0),
    ], out.schema)
    assert out.columns == mapping.PERSON_RECORD_IDENTIFIABLE_COLUMNS
    assert_df_equality(out, expected, ignore_row_order=True, ignore_nullable=True)


def test_event_golden(spark):
    src = police_da()
    cand = bronze(spark, ROWS).transform(mapping.event_candidates(src, TYPES))
    out = mapping.good_events(cand).orderBy("event_id")
    base = spark.createDataFrame([
        ("DA1", "victim", dt.date(2024, 2, 1), "HIGH", {"risk": "HIGH", "weapon": "true"}),
        ("DA1", "perpetrator", dt.date(2024, 2, 1), "HIGH", {}),
        ("DA2", "victim", dt.date(2024, 2, 2), "STANDARD", {"risk": "STANDARD"}),
    ], "record_key string, role string, event_date date, code string, attributes map<string,string>")
    expected = base.select(
        F.sha2(F.concat_ws("|", F.lit("police_da"), "record_key", F.lit("da_incident"), "role"), 256)
        .substr(1, 32).alias("event_id"),
        F.lit("police_da").alias("source"), "record_key",
        F.concat_ws("|", F.lit("police_da"), "record_key", "role").alias("record_id"),
        F.lit("da_incident").alias("event_type"), F.lit("domestic_abuse").alias("category"),
        "event_date", F.lit(None).cast("date").alias("end_date"), "code", "attributes",
        F.lit(dt.date(2024, 3, 1)).alias("known_date"), F.lit("b1").alias("_batch_id"),
    )
    assert_df_equality(out, expected.orderBy("event_id"), ignore_nullable=True)
    rejected = mapping.rejected_events(cand).select("record_id", "reason").collect()
    assert [tuple(r) for r in rejected] == [("police_da|DA3|victim", "da_incident: column incident_date: no usable event date")]


def test_event_dated_after_receipt_is_rejected_with_reason(spark):
    row = list(ROWS[1])
    row[12] = dt.date(2024, 6, 1)  # received 2024-03-01
    cand = bronze(spark, [tuple(row)]).transform(mapping.event_candidates(police_da(), TYPES))
    assert mapping.good_events(cand).count() == 0
    assert mapping.rejected_events(cand).first()["reason"].endswith("event date is after the day it was received")


def test_event_id_is_deterministic_and_per_role(spark):
    cand = bronze(spark, ROWS[:1]).transform(mapping.event_candidates(police_da(), TYPES))
    again = bronze(spark, ROWS[:1]).transform(mapping.event_candidates(police_da(), TYPES))
    ids = sorted(r.event_id for r in cand.collect())
    assert ids == sorted(r.event_id for r in again.collect())
    assert len(set(ids)) == 2 and all(len(i) == 32 for i in ids)


def test_relationship_golden(spark):
    out = bronze(spark, ROWS).transform(mapping.relationships(police_da()))
    expected = spark.createDataFrame(
        [("police_da", "DA1", "police_da|DA1|perpetrator", "police_da|DA1|victim", "partner", dt.date(2024, 2, 1))],
        mapping.relationship_schema(),
    )
    assert_df_equality(out, expected, ignore_nullable=True)


def gazetteer_source() -> SourceSchema:
    return SourceSchema.model_validate({
        "name": "gazetteer", "agency": "council", "owner": "gis@example.org", "format": "csv",
        "columns": [{"name": "uprn", "type": "long", "key": True}, {"name": "line1"}, {"name": "line2"},
                    {"name": "town"}, {"name": "pc"}, {"name": "ward"}],
        "silver": {"address": {"uprn": "uprn", "address_line1": "line1", "address_line2": "line2",
                               "town": "town", "postcode": "pc", "area": "ward"}},
    })


def gazetteer_bronze(spark):
    return spark.createDataFrame([
        (100012345, "12 High St", None, " bristol", "bs1 4dj", "Central", "b1", T0),
        (100054321, "1 Park Road", "Flat 2", "Bristol", "BS2 0AA", "Easton", "b1", T0),
        (-5, "Nowhere", None, "Bristol", "BS2 0AB", "Easton", "b1", T0),
    ], "uprn long, line1 string, line2 string, town string, pc string, ward string, _batch_id string, _ingested_at timestamp")


def test_address_golden(spark):
    src = gazetteer_source()
    cand = gazetteer_bronze(spark).transform(mapping.addresses(src))
    out = mapping.good_addresses(cand)
    expected = spark.createDataFrame([
        ("100012345", "12 HIGH STREET", None, "BRISTOL", "BS1 4DJ", "BS1", "Central"),
        ("100054321", "1 PARK ROAD", "FLAT 2", "BRISTOL", "BS2 0AA", "BS2", "Easton"),
    ], mapping.address_schema())
    assert_df_equality(out, expected, ignore_row_order=True, ignore_nullable=True)
    bad = mapping.rejected_addresses(cand).collect()
    assert [(r.record_key, r.reason) for r in bad] == [("-5", "column uprn: not a UPRN (1-12 digits)")]
    assert mapping.person_mappings(src) == []


def test_uprn_filled_from_gazetteer(spark):
    gz = mapping.good_addresses(gazetteer_bronze(spark).transform(mapping.addresses(gazetteer_source())))
    out = (bronze(spark, ROWS).transform(mapping.person_mentions(police_da()))
           .transform(mapping.standardise_persons).transform(mapping.with_uprn(gz)))
    got = {r.record_id: r.uprn for r in out.collect()}
    assert got["police_da|DA1|victim"] == "100012345"  # '12 High St.' + 'bs14dj'
    assert got["police_da|DA3|victim"] == "100054321"
    assert got["police_da|DA2|victim"] is None
    assert out.columns == mapping.PERSON_RECORD_IDENTIFIABLE_COLUMNS


def test_persons_from_maps_to_when_no_silver_block(spark):
    src = SourceSchema.model_validate({
        "name": "gp", "agency": "nhs", "owner": "x@example.org", "format": "csv",
        "columns": [{"name": "id", "key": True}, {"name": "fn", "maps_to": "first_name"},
                    {"name": "sn", "maps_to": "last_name"}],
    })
    df = spark.createDataFrame([("1", "Al", "Jones", "b1", T0, 2)],
                               "id string, fn string, sn string, _batch_id string, _ingested_at timestamp, _line long")
    out = df.transform(mapping.person_mentions(src)).transform(mapping.standardise_persons)
    assert [(r.record_id, r.role, r.last_name_folded) for r in out.collect()] == [("gp|1|subject", "subject", "jones")]


def test_latest_copy_of_a_record_wins(spark):
    later = dt.datetime(2024, 4, 1)
    df = spark.createDataFrame(
        [("DA1", "old", "b1", T0, 2), ("DA1", "new", "b2", later, 2), ("DA2", "only", "b1", T0, 3)],
        "incident_ref string, risk string, _batch_id string, _ingested_at timestamp, _line long")
    out = df.transform(mapping.latest_per_record(police_da()))
    assert sorted((r.incident_ref, r.risk) for r in out.collect()) == [("DA1", "new"), ("DA2", "only")]


def test_composite_key_joins_key_columns():
    src = SourceSchema.model_validate({
        "name": "census", "agency": "education", "owner": "x@example.org", "format": "csv",
        "columns": [{"name": "pupil", "key": True}, {"name": "term", "key": True}],
    })
    assert src.key_columns == ["pupil", "term"]
    assert "concat_ws" in str(mapping.record_key(src)).lower()


def test_unknown_event_type_is_a_config_error():
    src = police_da(events=[{"event_type": "da_incidnet", "date": "incident_date", "person_role": "victim"}])
    with pytest.raises(ConfigError, match=r"police_da.yaml: silver.events\[0\].event_type: 'da_incidnet'"):
        mapping.check_mapping(src, TYPES)


def test_repeated_role_and_bad_relationship_role_are_config_errors():
    twice = police_da(persons=[{"role": "victim", "fields": {"first_name": "v_forename"}},
                               {"role": "victim", "fields": {"first_name": "p_name"}}], relationships=[], events=[])
    with pytest.raises(ConfigError, match="mapped more than once"):
        mapping.check_mapping(twice, TYPES)
    dup_event = police_da(events=[{"event_type": "da_incident", "date": "incident_date", "person_role": "victim"}] * 2)
    with pytest.raises(ConfigError, match=r"silver.events\[1\]: .* repeats silver.events\[0\]"):
        mapping.check_mapping(dup_event, TYPES)


def test_identifying_column_cannot_be_an_event_attribute():
    src = police_da(events=[{"event_type": "da_incident", "date": "incident_date", "person_role": "victim",
                             "attributes": ["v_surname"]}])
    with pytest.raises(ConfigError, match=r"\['v_surname'\] identify a person"):
        mapping.check_mapping(src, TYPES)


def test_registered_transform_is_found_and_unknown_names_are_errors(spark):
    @transforms_registry.register("test_upper_risk")
    def upper_risk(df):
        """Test-only: upper-case the risk code."""
        return df.withColumn("risk", F.upper("risk"))

    try:
        fn = transforms_registry.get("test_upper_risk")
        df = spark.createDataFrame([("low",)], "risk string")
        assert df.transform(fn).first().risk == "LOW"
        assert "test_upper_risk" in transforms_registry.names()
        assert transforms_registry.describe()["test_upper_risk"] == "Test-only: upper-case the risk code."
        with pytest.raises(ConfigError, match="registered twice"):
            transforms_registry.register("test_upper_risk")(lambda d: d)
    finally:
        transforms_registry.unregister("test_upper_risk")
    with pytest.raises(ConfigError, match=r"x.yaml: silver.transform: 'test_upper_risk' is not a registered transform"):
        transforms_registry.get("test_upper_risk", where="x.yaml: silver.transform")


def test_transform_without_docstring_is_refused():
    with pytest.raises(ConfigError, match="needs a docstring"):
        transforms_registry.register("undocumented")(lambda d: d)

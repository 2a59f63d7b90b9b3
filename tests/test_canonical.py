"""Canonical table YAMLs load into typed models and give the Spark schemas silver writes."""
from __future__ import annotations

import datetime as dt

import pytest
import yaml
from pyspark.sql.types import DateType, MapType, StringType

from thinkfamily.canonical import (
    CANONICAL_TABLES,
    CanonicalTable,
    conform,
    load_canonical,
    load_canonical_tables,
    struct_type,
)
from thinkfamily.errors import ConfigError, PipelineError
from thinkfamily.sources import PERSON_FIELDS
from thinkfamily.yamlconf import load_model


def test_all_tables_load_with_descriptions():
    tables = load_canonical_tables()
    assert set(tables) == set(CANONICAL_TABLES)
    for t in tables.values():
        assert all(c.description for c in t.columns)


def test_person_record_covers_the_mappable_person_fields():
    names = set(load_canonical("person_record").column_names())
    # documented in person_record.yaml: person_ref -> source_person_ref, full_name is split into
    # the name parts, address_line2 and town are not carried
    assert set(PERSON_FIELDS) - {"person_ref", "full_name", "address_line2", "town"} <= names
    assert {"source_person_ref", "first_name_folded", "first_name_canonical", "dob_flag", "nhs_number_valid",
            "postcode_district"} <= names


def test_no_direct_identifier_survives_in_an_analyst_view():
    for t in load_canonical_tables().values():
        analyst = {f.name: f for f in t.struct_type("analyst").fields}
        for c in t.columns:
            if c.pii == "direct":
                assert c.name not in analyst or c.action == "token"
                if c.action == "token":
                    assert analyst[c.view_name("analyst")].dataType == StringType()


def test_struct_types_for_full_and_analyst_views():
    full = struct_type("person_record")
    analyst = struct_type("person_record", "analyst")
    assert full["dob"].dataType == DateType() and analyst["dob_token"].dataType == StringType()
    assert "first_name" in full.fieldNames() and "first_name" not in analyst.fieldNames()
    assert "birth_year" in analyst.fieldNames() and "birth_year" not in full.fieldNames()
    assert not full["record_id"].nullable
    assert struct_type("event")["attributes"].dataType == MapType(StringType(), StringType())
    assert load_canonical("person_record").table_name("full") == "person_record_identifiable"
    assert load_canonical("event").table_name("full") == "event"


def test_event_categories_match_the_event_vocabulary(project_root):
    vocab = yaml.safe_load((project_root / "schemas/canonical/event_types.yaml").read_text())
    assert load_canonical("event").column("category").allowed == vocab["categories"]


def test_bad_canonical_yaml_reads_as_file_key_problem(tmp_path):
    p = tmp_path / "person_record.yaml"
    p.write_text(
        "name: person_record\ndescription: d\ngrain: g\nkey: [id]\ncolumns:\n"
        "  - {name: id, type: string, nullable: false, description: x}\n"
        "  - {name: nhs_number, type: strng, description: x}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"person_record.yaml: columns\[1\].type: 'strng' is not one of"):
        load_model(p, CanonicalTable)
    p.write_text(
        "name: t\ndescription: d\ngrain: g\nkey: [id]\nrestricted_table: t_identifiable\ncolumns:\n"
        "  - {name: id, type: string, nullable: false, description: x}\n"
        "  - {name: nhs_number, type: string, pii: direct, analyst: keep, description: x}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="direct identifier: analyst must be token or drop"):
        load_model(p, CanonicalTable)
    with pytest.raises(ConfigError, match="unknown canonical table 'people'"):
        load_canonical("people")


def test_conform_selects_orders_and_casts(spark):
    table = load_canonical("relationship")
    df = spark.createDataFrame(
        [("x", "2024-01-05", "parent", "p2", "p1", "k", "src")],
        "extra string, valid_date string, relationship string, to_record_id string, "
        "from_record_id string, record_key string, source string",
    )
    out = conform(df, table)
    assert out.columns == table.column_names() == ["source", "record_key", "from_record_id", "to_record_id",
                                                   "relationship", "valid_date"]
    assert out.first().valid_date == dt.date(2024, 1, 5)
    with pytest.raises(PipelineError, match=r"relationship: frame lacks column\(s\) \['from_record_id'\]"):
        conform(df.drop("from_record_id"), table)


def test_yamls_match_the_tables_the_silver_mapping_writes():
    """schemas/canonical is the documented contract: names, order and types agree with silver."""
    mapping = pytest.importorskip("thinkfamily.mapping")

    def shape(schema):
        return [(f.name, f.dataType.simpleString()) for f in schema.fields]

    assert load_canonical("person_record").column_names("full") == mapping.PERSON_RECORD_IDENTIFIABLE_COLUMNS
    assert load_canonical("person_record").column_names("analyst") == mapping.PERSON_RECORD_COLUMNS
    assert load_canonical("event").column_names("full") == mapping.EVENT_COLUMNS
    assert load_canonical("relationship").column_names("full") == mapping.RELATIONSHIP_COLUMNS
    assert load_canonical("address").column_names("full") == mapping.ADDRESS_COLUMNS
    for name in ("event", "relationship", "address"):  # no direct identifiers: one view, one table
        assert load_canonical(name).column_names("analyst") == load_canonical(name).column_names("full")
    person = load_canonical("person_record")
    tokens = {c.view_name("analyst"): (c.name, c.purpose) for c in person.columns if c.action == "token"}
    assert tokens == mapping.TOKENS  # same source column and HMAC purpose, so tokens join across tables
    assert shape(struct_type("event")) == shape(mapping.event_schema())
    assert shape(struct_type("relationship")) == shape(mapping.relationship_schema())
    assert shape(struct_type("address")) == shape(mapping.address_schema())
    for name in CANONICAL_TABLES:
        assert load_canonical(name).key == mapping.KEYS[name]

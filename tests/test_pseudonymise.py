"""Keyed HMAC tokens: equal to Python's hmac, nulls kept, key never in the plan or the log."""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from thinkfamily import pseudonymise
from thinkfamily.canonical import load_canonical
from thinkfamily.config import DEFAULT_PSEUDO_KEY
from thinkfamily.errors import ConfigError
from thinkfamily.pseudonymise import (
    hmac_token,
    pseudonymisation_key,
    pseudonymise_columns,
    pseudonymise_table,
    token,
)

KEY = b"test-key-\x00\xff-not-secret"


def py_token(value: str, key: bytes = KEY, purpose: str = "nhs_number") -> str:
    return hmac.new(key, (purpose + "|" + value).encode("utf-8"), hashlib.sha256).hexdigest()


def test_spark_token_equals_python_hmac(spark):
    values = ["9434765919", "Zoë Brontë", "  spaced  ", "x" * 200, None, ""]
    df = spark.createDataFrame([(v,) for v in values], "v string")
    got = [r.t for r in df.select(hmac_token(F.col("v"), KEY, "nhs_number").alias("t")).collect()]
    assert got[:4] == [py_token(v) for v in values[:4]]
    assert got[4:] == [None, None]  # nulls and blanks stay null: no shared token for 'nothing'
    assert got[0] == token("9434765919", KEY, "nhs_number")
    long_key = b"k" * 100  # longer than the SHA-256 block: hmac hashes it first
    one = df.limit(1).select(hmac_token("v", long_key, "p").alias("t")).first().t
    assert one == py_token("9434765919", long_key, "p")


def test_purpose_and_key_separate_tokens(spark):
    df = spark.createDataFrame([("9434765919",)], "v string")
    row = df.select(
        hmac_token("v", KEY, "nhs_number").alias("a"),
        hmac_token("v", KEY, "upn").alias("b"),
        hmac_token("v", b"other-key", "nhs_number").alias("c"),
    ).first()
    assert len({row.a, row.b, row.c}) == 3
    assert all(len(t) == 64 for t in row)


def test_non_string_columns_are_tokenised_by_their_string_form(spark):
    df = spark.createDataFrame([(dt.date(2010, 2, 1), 100023336956)], "dob date, uprn long")
    row = df.select(hmac_token("dob", KEY, "dob").alias("d"), hmac_token("uprn", KEY, "uprn").alias("u")).first()
    assert row.d == py_token("2010-02-01", purpose="dob")
    assert row.u == py_token("100023336956", purpose="uprn")


def test_key_does_not_appear_in_the_query_plan(spark, capsys):
    key = b"very-distinctive-secret-4c1d"
    df = spark.createDataFrame([("9434765919",)], "v string").select(hmac_token("v", key, "nhs_number").alias("t"))
    df.explain(extended=True)
    plan = capsys.readouterr().out
    assert "very-distinctive" not in plan and key.hex() not in plan


def test_pseudonymise_columns_replaces_in_place(spark):
    df = spark.createDataFrame([(1, "9434765919", "AB123456C"), (2, None, "AB123456C")], "id int, nhs string, ni string")
    out = pseudonymise_columns(df, ["nhs", "ni"], KEY, "id")
    expected = spark.createDataFrame(
        [(1, py_token("9434765919", purpose="id"), py_token("AB123456C", purpose="id")),
         (2, None, py_token("AB123456C", purpose="id"))],
        "id int, nhs string, ni string",
    )
    assert_df_equality(out, expected, ignore_nullable=True)
    per_column = pseudonymise_columns(df, ["ni"], KEY).first()
    assert per_column.ni == py_token("AB123456C", purpose="ni") and per_column.nhs == "9434765919"
    with pytest.raises(ConfigError, match=r"no column\(s\) \['nope'\]"):
        pseudonymise_columns(df, ["nope"], KEY)


def test_bad_key_or_purpose_is_a_config_error():
    with pytest.raises(ConfigError, match="non-empty bytes"):
        hmac_token("v", b"", "p")
    with pytest.raises(ConfigError, match="no '\\|'"):
        hmac_token("v", KEY, "a|b")


PERSON = {
    "record_id": "gp_registrations|k1|subject", "source": "gp_registrations", "record_key": "k1", "role": "subject",
    "source_person_ref": "GP-77", "first_name": "Zoë", "first_name_folded": "zoe", "first_name_canonical": "zoe",
    "last_name": "Brontë", "last_name_folded": "bronte", "dob": dt.date(2010, 2, 1), "dob_flag": "ok", "sex": "F",
    "nhs_number": "9434765919", "nhs_number_valid": True, "address_line1": "12 HIGH STREET", "postcode": "BS1 4DJ",
    "postcode_district": "BS1", "uprn": "100023336956", "valid_date": dt.date(2024, 1, 1), "_batch_id": "b1",
}


def person_frame(spark, table):
    full = table.struct_type("full")
    return spark.createDataFrame([tuple(PERSON.get(f.name) for f in full.fields)], full)


def test_analyst_view_of_person_record_has_no_cleartext(spark):
    table = load_canonical("person_record")
    out = pseudonymise_table(person_frame(spark, table), table, KEY)
    assert out.schema == table.struct_type("analyst")
    row = out.first().asDict()
    assert row["nhs_token"] == py_token("9434765919", purpose="nhs_number")
    assert row["uprn_token"] == py_token("100023336956", purpose="uprn")
    assert row["source_person_ref_token"] == py_token("gp_registrations|GP-77", purpose="person_ref")
    assert row["first_name_token"] == py_token("zoe", purpose="first_name")
    assert row["birth_year"] == 2010 and row["postcode_district"] == "BS1" and row["sex"] == "F"
    text = repr(row)
    for cleartext in ("9434765919", "Zoë", "zoe", "Brontë", "bronte", "2010-02-01", "BS1 4DJ", "100023336956",
                      "HIGH STREET", "GP-77"):
        assert cleartext not in text


def test_schema_driven_view_matches_the_silver_mapping(spark):
    """person_record.yaml is the contract: the silver job's own pseudonymising select agrees."""
    mapping = pytest.importorskip("thinkfamily.mapping")
    table = load_canonical("person_record")
    df = person_frame(spark, table)
    assert df.columns == mapping.PERSON_RECORD_IDENTIFIABLE_COLUMNS
    ours = pseudonymise_table(df, table, KEY)
    theirs = df.transform(mapping.pseudonymised_persons(lambda c, p: hmac_token(c, KEY, p)))
    assert_df_equality(ours, theirs, ignore_nullable=True)


def test_default_key_is_announced_once_and_never_logged(env, monkeypatch, caplog):
    monkeypatch.delenv(env.secrets.pseudonymisation_key_env, raising=False)
    monkeypatch.setattr(pseudonymise, "_announced", set())
    with caplog.at_level(logging.INFO, logger="thinkfamily.pseudonymise"):
        assert pseudonymisation_key(env) == DEFAULT_PSEUDO_KEY.encode()
        pseudonymisation_key(env)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1 and "demo key" in messages[0]
    assert DEFAULT_PSEUDO_KEY not in messages[0]

    caplog.clear()
    monkeypatch.setenv(env.secrets.pseudonymisation_key_env, "a-real-secret-from-the-vault")
    assert pseudonymisation_key(env) == b"a-real-secret-from-the-vault"
    assert not caplog.records

    monkeypatch.delenv(env.secrets.pseudonymisation_key_env)
    cluster = env.model_copy(update={"kind": "cluster", "name": "cluster"})
    with pytest.raises(ConfigError, match="is not set"):
        pseudonymisation_key(cluster)

"""The person tables' "best known value" per person (thinkfamily/linkage/people.py)."""
from __future__ import annotations

import datetime as dt

from chispa import assert_df_equality

from thinkfamily.linkage import people

D = dt.date
LINKED = ("person_id string, record_id string, source string, valid_date date, first_name string, "
          "last_name string, dob date, sex string, nhs_number string, nhs_number_valid boolean, upn string, "
          "upn_valid boolean, ni_number string, ni_number_valid boolean, uprn string, postcode string")


def test_most_frequent_value_wins_then_the_latest_then_the_smallest_and_invalid_ids_never_count(spark):
    linked = spark.createDataFrame([
        # P1: 'Amy' twice beats 'Amelia' once; dob tie (one each) -> the most recently seen;
        # the invalid NHS number is never chosen even though it is more frequent
        ("P1", "r1", "police", D(2024, 1, 1), "Amy", "Jones", D(2010, 5, 1), "F", "999", False, None, None, None, None, "U1", "BS1 1AA"),
        ("P1", "r2", "school", D(2024, 6, 1), "Amy", "Jones", D(2010, 1, 5), "F", "999", False, "A1", True, None, None, "U2", "BS2 2BB"),
        ("P1", "r3", "health", D(2023, 1, 1), "Amelia", "Jones", None, "U", "4010232137", True, None, None, None, None, None, None),
        # P2: every value ties on count and date -> the smallest; sex only 'U' -> 'U'; no address
        ("P2", "r4", "police", D(2024, 1, 1), "Bo", "Li", None, "U", None, None, None, None, "AB1", True, None, None),
        ("P2", "r5", "school", D(2024, 1, 1), "Ben", "Lee", None, None, None, None, None, None, "AA1", True, None, None),
    ], LINKED)
    expected = spark.createDataFrame([
        ("P1", "Amy", "Jones", D(2010, 1, 5), "F", "4010232137", "A1", None, "U2", "BS2 2BB"),
        ("P2", "Ben", "Lee", None, "U", None, None, "AA1", None, None),
    ], "person_id string, first_name string, last_name string, dob date, sex string, nhs_number string, "
       "upn string, ni_number string, uprn string, postcode string")
    assert_df_equality(people.person_identifiable(linked), expected, ignore_row_order=True, ignore_nullable=True)

    person = people.person(linked).select("person_id", "sex", "birth_year", "dob", "n_records", "n_sources")
    expected_person = spark.createDataFrame([("P1", "F", 2010, D(2010, 1, 5), 3, 3), ("P2", "U", None, None, 2, 2)],
                                            "person_id string, sex string, birth_year int, dob date, "
                                            "n_records long, n_sources long")
    assert_df_equality(person, expected_person, ignore_row_order=True, ignore_nullable=True)


def test_person_link_names_the_strongest_evidence_for_each_record(both_modes):
    spark = both_modes
    records = spark.createDataFrame([(f"r{i}", "src", f"k{i}", "subject") for i in range(1, 7)],
                                    "record_id string, source string, record_key string, role string")
    assignment = spark.createDataFrame([("r1", "P1"), ("r2", "P1"), ("r3", "P1"), ("r4", "P2"), ("r5", "P2"),
                                        ("r6", "P3")], "node string, id string")
    edges = spark.createDataFrame([
        ("r1", "r2", 1.0, "shared_child"),   # r1: shared child, then an NHS number -> the NHS number
        ("r1", "r3", 1.0, "nhs_number"),
        ("r2", "r3", 0.97, None),            # r2: shared child beats its model link
        ("r4", "r5", 0.999, None),           # P2: model link only
    ], "unique_id_l string, unique_id_r string, match_probability double, identifier string")
    at = dt.datetime(2026, 1, 1)
    got = people.person_link(records, assignment, edges, at).select("record_id", "person_id", "match_probability",
                                                                   "link_method")
    expected = spark.createDataFrame([
        ("r1", "P1", 1.0, "deterministic_nhs_number"), ("r2", "P1", 1.0, "deterministic_shared_child"),
        ("r3", "P1", 1.0, "deterministic_nhs_number"), ("r4", "P2", 0.999, "probabilistic"),
        ("r5", "P2", 0.999, "probabilistic"), ("r6", "P3", None, "singleton"),
    ], "record_id string, person_id string, match_probability double, link_method string")
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_every_deterministic_identifier_has_a_rank():
    from typing import get_args

    from thinkfamily.linkage.config import Identifier

    assert set(get_args(Identifier)) <= set(people.IDENTIFIER_ORDER)

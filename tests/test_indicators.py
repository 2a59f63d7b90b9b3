"""Indicator rules on tiny inline frames: windows, boundaries, ages, rollups, eligibility, config errors."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from thinkfamily.errors import ConfigError
from thinkfamily.indicators import (
    EVENT_SCHEMA,
    IndicatorSet,
    build_gold,
    load_indicators,
    load_vocabulary,
    snapshots_frame,
)

ROOT = Path(__file__).resolve().parents[1]
D = dt.date
AS_OF = D(2025, 3, 31)


@pytest.fixture(scope="module")
def inds(spark) -> IndicatorSet:
    return load_indicators(ROOT / "conf" / "indicators.yaml", spark=spark)


@pytest.fixture(scope="module")
def vocab():
    return load_vocabulary()


def ev(person, etype, date, known=None, end=None, code=None, **attrs):
    """One silver/event row for a person (record_id = person id, linked 1:1 below)."""
    ev.n += 1
    return (f"e{ev.n}", "src", f"k{ev.n}", person, etype, None, date, end, code,
            {k: str(v) for k, v in attrs.items()}, known or date, "b1")


ev.n = 0


class City:
    """Builds the silver inputs for build_gold from a few people, families and events."""

    def __init__(self, spark):
        self.spark = spark
        self.people: list[tuple] = []  # person_id, dob
        self.members: list[tuple] = []  # family_id, person_id, role, from, to
        self.events: list[tuple] = []

    def person(self, pid, dob, family=None, role="child", start=None, end=None):
        self.people.append((pid, dob))
        if family:
            self.members.append((family, pid, role, start, end))
        return self

    def event(self, *a, **k):
        self.events.append(ev(*a, **k))
        return self

    def gold(self, inds, vocab, dates=(AS_OF,)):
        s = self.spark
        events = s.createDataFrame(self.events, EVENT_SCHEMA)
        link = s.createDataFrame([(p, p) for p, _ in self.people], "record_id string, person_id string")
        person = s.createDataFrame([(p, dob.year if dob else None, None) for p, dob in self.people],
                                   "person_id string, birth_year int, first_seen date")
        ident = s.createDataFrame(self.people, "person_id string, dob date")
        fm = s.createDataFrame(self.members, "family_id string, person_id string, role string, from_date date, to_date date")
        frames = build_gold(events, link, person, ident, fm, snapshots_frame(s, list(dates)), inds, vocab,
                            keep=lambda df: df.localCheckpoint())  # short plans: fast tests
        return {name: df.collect() for name, df in frames.items()}


def person_row(g, pid, snap=AS_OF):
    rows = [r for r in g["person_indicators"] if r.person_id == pid and r.snapshot_date == snap]
    assert len(rows) == 1, rows
    return rows[0]


def family_row(g, fid, snap=AS_OF):
    rows = [r for r in g["family_indicators"] if r.family_id == fid and r.snapshot_date == snap]
    assert len(rows) == 1, rows
    return rows[0]


def families(g, fid, snap):
    return [r for r in g["family_indicators"] if r.family_id == fid and r.snapshot_date == snap]


# ----------------------------------------------------------------------------- config
def test_shipped_config_covers_categories_outcomes_and_model_features(inds, vocab):
    cats = {i.headline_problem for i in inds.indicators if i.counts_towards_eligibility}
    outs = {o for i in inds.indicators if i.counts_towards_eligibility for o in i.sf_outcomes}
    assert cats == set(vocab.categories)
    assert outs == set(vocab.outcomes)
    for needed in ["missing_episode_12m", "persistent_absence", "excluded_3plus", "cs_referral_12m",
                   "child_in_need", "cp_plan", "looked_after", "da_household_12m",
                   "substance_misuse_12m", "offence_12m"]:
        assert needed in inds.ids


def write_conf(tmp_path, mutate):
    data = yaml.safe_load((ROOT / "conf" / "indicators.yaml").read_text())
    mutate(data["indicators"])
    p = tmp_path / "indicators.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


@pytest.mark.parametrize("mutate, expected", [
    (lambda i: i[0]["rule"].update(event_types=["offense"]),
     "indicators[0] (youth_proven_offence_12m).rule.event_types: 'offense' is not a canonical event type"),
    (lambda i: i[1].update(headline_problem="crime"),
     "indicators[1] (offence_12m).headline_problem: 'crime' is not one of"),
    (lambda i: i[2].update(sf_outcomes=["happiness"]),
     "indicators[2] (asb_intervention_12m).sf_outcomes: 'happiness' is not one of"),
    (lambda i: i[0]["rule"].update(condition="attributes['outcome'] = = 'x'"),
     "indicators[0] (youth_proven_offence_12m).rule.condition: Spark cannot use it"),
    (lambda i: i[0]["rule"].update(condition="no_such_column = 1"),
     "indicators[0] (youth_proven_offence_12m).rule.condition: Spark cannot use it"),
    (lambda i: i[0]["rule"].update(condition="code"),
     "indicators[0] (youth_proven_offence_12m).rule.condition: must be a boolean expression, got string"),
    (lambda i: i[6]["rule"].update(aggregate="sum(attributes['sessions_missed'] / )"),
     "indicators[6] (persistent_absence).rule.aggregate: Spark cannot use it"),
    (lambda i: i[0].update(lookback={"months": 12, "terms": 3}),
     "indicators[0] (youth_proven_offence_12m).lookback: Value error, give exactly one of months, terms or current"),
    (lambda i: i[0].update(reason="{count} offences by {name}"),
     "indicators[0] (youth_proven_offence_12m).reason: Value error, unknown placeholder(s) ['name']"),
    (lambda i: i[1].update(id="youth_proven_offence_12m"),
     "indicator id 'youth_proven_offence_12m' appears twice"),
    (lambda i: i[0].update(colour="red"),
     "indicators[0] (youth_proven_offence_12m).colour: unknown key"),
])
def test_config_errors_name_the_indicator_and_field(spark, tmp_path, mutate, expected):
    path = write_conf(tmp_path, mutate)
    with pytest.raises(ConfigError) as err:
        load_indicators(path, spark=spark)
    assert expected in str(err.value)
    assert str(path) in str(err.value)


# ----------------------------------------------------------------------------- crime
def test_youth_proven_offence_window_edges_and_age_bounds(spark, inds, vocab):
    # window is (31 Mar 2024, 31 Mar 2025]: 31 Mar 2024 is out, 1 Apr 2024 and 31 Mar 2025 are in
    c = (City(spark)
         .person("in_first_day", D(2010, 1, 1), "F1").event("in_first_day", "offence", D(2024, 4, 1), code="proven")
         .person("out_edge", D(2010, 1, 1), "F2").event("out_edge", "offence", D(2024, 3, 31), code="proven")
         .person("on_snapshot", D(2010, 1, 1), "F3").event("on_snapshot", "offence", AS_OF, outcome="charged")
         .person("not_proven", D(2010, 1, 1), "F4").event("not_proven", "offence", D(2025, 1, 1), outcome="nfa")
         .person("nine", D(2015, 4, 1), "F5").event("nine", "offence", D(2025, 1, 1), code="proven")       # 9 on 31 Mar
         .person("ten_today", D(2015, 3, 31), "F6").event("ten_today", "offence", D(2025, 1, 1), code="proven")
         .person("eighteen", D(2007, 3, 31), "F7", role="adult").event("eighteen", "offence", D(2025, 1, 1), code="proven"))
    g = c.gold(inds, vocab)
    flags = {r.person_id: (r.youth_proven_offence_12m, r.youth_proven_offence_12m_count, r.offence_12m)
             for r in g["person_indicators"]}
    assert flags == {
        "in_first_day": (True, 1, True), "out_edge": (False, 0, False), "on_snapshot": (True, 1, True),
        "not_proven": (False, 0, True), "nine": (False, 0, True), "ten_today": (True, 1, True),
        "eighteen": (False, 0, True),
    }
    assert person_row(g, "ten_today").age == 10 and person_row(g, "nine").age == 9


def test_adult_on_licence_is_current_episodes_only(spark, inds, vocab):
    c = (City(spark)
         .person("open", D(1980, 1, 1), "F1", role="carer").event("open", "probation", D(2024, 1, 1))
         .person("ends_today", D(1980, 1, 1), "F2", role="carer").event("ends_today", "probation", D(2024, 1, 1), end=AS_OF)
         .person("ended", D(1980, 1, 1), "F3", role="carer").event("ended", "probation", D(2024, 1, 1), end=D(2025, 3, 30))
         .person("child", D(2009, 1, 1), "F4").event("child", "probation", D(2024, 1, 1)))
    g = c.gold(inds, vocab)
    got = {r.person_id: r.adult_on_licence_or_order for r in g["person_indicators"]}
    assert got == {"open": True, "ends_today": True, "ended": False, "child": False}


# ----------------------------------------------------------------------------- school
def test_persistent_absence_ratio_over_last_three_terms(spark, inds, vocab):
    # as of 31 Mar 2025 the last three terms are spring 2025, autumn 2024, summer 2024
    c = (City(spark)
         # 9 + 10 + 11 missed of 100 each = 10.0% -> persistent
         .person("exactly10", D(2014, 6, 1), "F1").event("exactly10", "school_enrolment", D(2025, 1, 16))
         .event("exactly10", "attendance_term", D(2024, 4, 15), sessions_possible=100, sessions_missed=9)
         .event("exactly10", "attendance_term", D(2024, 9, 5), sessions_possible=100,
                sessions_authorised=4, sessions_unauthorised=6)  # the school census shape
         .event("exactly10", "attendance_term", D(2025, 1, 6), sessions_possible=100, sessions_missed=11)
         # a bad spring 2024 term falls outside the three terms
         .person("old_bad_term", D(2014, 6, 1), "F2")
         .event("old_bad_term", "attendance_term", D(2024, 1, 8), sessions_possible=100, sessions_missed=60)
         .event("old_bad_term", "attendance_term", D(2024, 4, 15), sessions_possible=100, sessions_missed=5)
         .event("old_bad_term", "attendance_term", D(2024, 9, 5), sessions_possible=100, sessions_missed=5)
         .event("old_bad_term", "attendance_term", D(2025, 1, 6), sessions_possible=100, sessions_missed=5)
         # 9.9%
         .person("below", D(2014, 6, 1), "F3")
         .event("below", "attendance_term", D(2025, 1, 6), sessions_possible=1000, sessions_missed=99)
         # too old for the population (17)
         .person("seventeen", D(2007, 6, 1), "F4")
         .event("seventeen", "attendance_term", D(2025, 1, 6), sessions_possible=100, sessions_missed=50))
    g = c.gold(inds, vocab)
    got = {r.person_id: (r.persistent_absence, r.persistent_absence_count, round(r.persistent_absence_value or 0, 3))
           for r in g["person_indicators"]}
    assert got == {"exactly10": (True, 3, 0.1), "old_bad_term": (False, 3, 0.05),
                   "below": (False, 1, 0.099), "seventeen": (False, 0, 0.0)}
    assert family_row(g, "F1").reasons == ["A child missed 10.0% of sessions over the last 3 terms to 31 Mar 2025"]


def test_exclusions_three_suspensions_or_one_permanent(spark, inds, vocab):
    c = (City(spark)
         .person("three", D(2012, 1, 1), "F1")
         .event("three", "exclusion_fixed", D(2024, 4, 20)).event("three", "exclusion_fixed", D(2024, 10, 1))
         .event("three", "exclusion_fixed", D(2025, 2, 1))
         .person("two", D(2012, 1, 1), "F2")
         .event("two", "exclusion_fixed", D(2024, 3, 31)).event("two", "exclusion_fixed", D(2024, 10, 1))
         .event("two", "exclusion_fixed", D(2025, 2, 1))
         .person("perm", D(2012, 1, 1), "F3").event("perm", "exclusion_permanent", D(2025, 3, 1)))
    g = c.gold(inds, vocab)
    got = {r.person_id: (r.excluded_3plus, r.excluded_3plus_count) for r in g["person_indicators"]}
    # the 31 Mar 2024 suspension is in spring 2024: four terms back, outside the window
    assert got == {"three": (True, 3), "two": (False, 2), "perm": (True, 1)}


def test_not_in_school_flags_school_age_children_without_enrolment(spark, inds, vocab):
    c = (City(spark)
         .person("enrolled", D(2015, 1, 1), "F1").event("enrolled", "school_enrolment", D(2024, 9, 1))
         .person("missing", D(2015, 1, 1), "F2")
         .person("toddler", D(2022, 1, 1), "F3")
         .person("stale", D(2015, 1, 1), "F4").event("stale", "school_enrolment", D(2023, 9, 1), end=D(2023, 12, 20)))
    g = c.gold(inds, vocab)
    got = {r.person_id: r.not_in_school for r in g["person_indicators"]}
    assert got == {"enrolled": False, "missing": True, "toddler": False, "stale": True}


# ----------------------------------------------------------------------------- health, DA, rollups
def test_frequent_ae_needs_three_in_twelve_months_for_one_person(spark, inds, vocab):
    c = (City(spark)
         .person("mum", D(1985, 1, 1), "F1", role="carer")
         .event("mum", "ae_attendance", D(2024, 4, 1)).event("mum", "ae_attendance", D(2024, 8, 1))
         .event("mum", "ae_attendance", D(2025, 3, 31))
         .person("dad", D(1985, 1, 1), "F2", role="carer")
         .event("dad", "ae_attendance", D(2024, 3, 31)).event("dad", "ae_attendance", D(2024, 8, 1))
         .event("dad", "ae_attendance", D(2025, 3, 31))
         .person("kid", D(2015, 1, 1), "F2"))
    g = c.gold(inds, vocab)
    assert person_row(g, "mum").frequent_ae_12m and person_row(g, "mum").frequent_ae_12m_count == 3
    assert not person_row(g, "dad").frequent_ae_12m and person_row(g, "dad").frequent_ae_12m_count == 2
    assert not family_row(g, "F2").frequent_ae_12m


def test_da_in_household_reaches_every_member_and_the_family(spark, inds, vocab):
    c = (City(spark)
         .person("victim", D(1990, 1, 1), "F1", role="carer").event("victim", "da_incident", D(2025, 1, 1))
         .person("child", D(2016, 1, 1), "F1")
         .person("neighbour", D(1990, 1, 1), "F2", role="adult"))
    g = c.gold(inds, vocab)
    assert person_row(g, "child").da_household_12m and person_row(g, "child").da_household_12m_count == 1
    assert not person_row(g, "neighbour").da_household_12m
    f = family_row(g, "F1")
    assert f.da_household_12m and f.cat_domestic_abuse and f.need_safe_from_domestic_abuse


def test_children_only_rollup_ignores_adults(spark, inds, vocab):
    c = (City(spark)
         .person("young_mum", D(2008, 1, 1), "F1", role="carer")  # 17: a child by age, a carer by role
         .event("young_mum", "cs_referral", D(2025, 1, 1))
         .person("baby", D(2024, 6, 1), "F1"))
    g = c.gold(inds, vocab)
    assert person_row(g, "young_mum").cs_referral_12m
    assert not family_row(g, "F1").cs_referral_12m


def test_health_visiting_concern_condition_and_under_fives(spark, inds, vocab):
    c = (City(spark)
         .person("baby", D(2024, 1, 1), "F1").event("baby", "health_visiting", D(2025, 1, 1), concernRaised="true")
         .person("baby2", D(2024, 1, 1), "F2").event("baby2", "health_visiting", D(2025, 1, 1), concernRaised="false")
         .person("five", D(2020, 1, 1), "F3").event("five", "health_visiting", D(2025, 1, 1), concern="yes"))
    g = c.gold(inds, vocab)
    got = {r.person_id: r.health_visiting_concern_12m for r in g["person_indicators"]}
    assert got == {"baby": True, "baby2": False, "five": False}


def test_neet_needs_a_neet_destination_and_age_16_to_24(spark, inds, vocab):
    c = (City(spark)
         .person("neet", D(2008, 1, 1), "F1").event("neet", "neet", D(2024, 9, 1), code="NEET")
         .person("eet", D(2008, 1, 1), "F2").event("eet", "neet", D(2024, 9, 1), code="EET_TRAINING")
         .person("fifteen", D(2009, 6, 1), "F3").event("fifteen", "neet", D(2024, 9, 1), code="NEET"))
    got = {r.person_id: r.neet for r in c.gold(inds, vocab)["person_indicators"]}
    assert got == {"neet": True, "eet": False, "fifteen": False}


# ----------------------------------------------------------------------------- point in time
def test_leakage_events_dated_or_known_after_the_snapshot_never_count(spark, inds, vocab):
    early, late = D(2025, 1, 31), AS_OF
    c = (City(spark)
         .person("kid", D(2012, 1, 1), "F1")
         .event("kid", "missing_episode", D(2025, 1, 10))                      # dated and known by 31 Jan
         .event("kid", "missing_episode", D(2025, 1, 20), known=D(2025, 2, 3))  # dated before, known after
         .event("kid", "missing_episode", D(2025, 2, 1))                       # dated after 31 Jan
         .event("kid", "cp_plan", D(2025, 3, 1)))
    g = c.gold(inds, vocab, dates=(early, late))
    r_early, r_late = person_row(g, "kid", early), person_row(g, "kid", late)
    assert (r_early.missing_episode_12m_count, r_early.cp_plan) == (1, False)
    assert (r_late.missing_episode_12m_count, r_late.cp_plan) == (3, True)
    tl = [r for r in g["family_timeline"] if r.snapshot_date == early]
    assert [r.event_date for r in tl] == [D(2025, 1, 10)]
    # the early snapshot computed alone equals the early slice of the two-snapshot run
    alone = c.gold(inds, vocab, dates=(early,))
    assert person_row(alone, "kid", early) == r_early


def test_membership_and_age_are_as_of_the_snapshot(spark, inds, vocab):
    c = (City(spark)
         .person("kid", D(2015, 1, 1), "F1", end=D(2024, 12, 31))
         .person("kid2", D(2015, 1, 1), "F2", start=D(2025, 1, 1))
         .event("kid", "cs_referral", D(2024, 11, 1)))
    s1, s2 = D(2024, 11, 30), D(2025, 1, 31)
    g = c.gold(inds, vocab, dates=(s1, s2))
    assert family_row(g, "F1", s1).cs_referral_12m
    assert families(g, "F1", s2) == [] and families(g, "F2", s1) == []
    assert person_row(g, "kid", s2).family_id is None and person_row(g, "kid", s2).cs_referral_12m


# ----------------------------------------------------------------------------- eligibility
def test_eligibility_arithmetic(spark, inds, vocab):
    c = (City(spark)
         # two headline problems (crime, school) -> TF eligible; needs: crime_prevention, good_education = 2
         .person("a", D(2010, 1, 1), "TWO")
         .event("a", "offence", D(2025, 1, 1), code="proven").event("a", "exclusion_permanent", D(2025, 1, 1))
         # one headline problem (children need help): CP plan -> safe_from_abuse only (17: past school age)
         .person("b", D(2008, 1, 1), "ONE").event("b", "cp_plan", D(2025, 1, 1))
         # adults only: benefits + rent arrears + mental health -> 2 problems, 3 needs, but no child
         .person("c", D(1980, 1, 1), "NOKIDS", role="adult")
         .event("c", "benefit_claim", D(2024, 1, 1)).event("c", "rent_arrears", D(2025, 1, 1))
         .event("c", "mental_health", D(2025, 1, 1))
         # the same with a child -> SF eligible
         .person("d", D(1980, 1, 1), "SF", role="carer")
         .event("d", "benefit_claim", D(2024, 1, 1)).event("d", "rent_arrears", D(2025, 1, 1))
         .event("d", "mental_health", D(2025, 1, 1))
         .person("e", D(2021, 1, 1), "SF"))
    g = c.gold(inds, vocab)
    got = {r.family_id: (r.n_headline_problems, r.eligible_tf, r.sf_needs_count, r.eligible_sf, r.has_dependent_child)
           for r in g["family_indicators"]}
    assert got == {
        "TWO": (2, True, 2, False, True),
        "ONE": (1, False, 1, False, True),
        "NOKIDS": (2, True, 3, False, False),
        "SF": (2, True, 3, True, True),
    }
    assert family_row(g, "SF").need_financial_stability and family_row(g, "SF").need_secure_housing


def test_feature_only_indicators_do_not_make_families_eligible(spark, inds, vocab):
    c = (City(spark)
         .person("adult", D(1980, 1, 1), "F1", role="carer")
         .event("adult", "offence", D(2025, 1, 1)).event("adult", "asb_incident", D(2025, 1, 1)))
    f = family_row(c.gold(inds, vocab), "F1")
    assert f.offence_12m and f.asb_incident_12m and not f.cat_crime_asb and f.n_headline_problems == 0


def test_summary_counts_persons_and_families(spark, inds, vocab):
    c = (City(spark)
         .person("a", D(2008, 1, 1), "F1").event("a", "missing_episode", D(2025, 1, 1))
         .person("b", D(2009, 1, 1), "F1").event("b", "missing_episode", D(2025, 2, 1))
         .person("c", D(2009, 1, 1), "F2"))
    g = c.gold(inds, vocab)
    rows = {r.indicator: (r.kind, r.n_persons, r.n_families) for r in g["indicator_summary"]}
    assert rows["missing_episode_12m"] == ("indicator", 2, 1)
    assert rows["all"] == ("population", 3, 2)
    assert rows["eligible_tf"] == ("eligibility", None, 0)
    assert rows["cp_plan"] == ("indicator", 0, 0)

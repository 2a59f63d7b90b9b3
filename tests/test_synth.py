"""The synthetic city keeps its promises: deterministic, valid identifiers, agency-shaped
extracts, injected errors at their configured rates, and truth for every record."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from thinkfamily.synth import SCALES, generate_city
from thinkfamily.synth.catalog import catalog
from thinkfamily.synth.config import ErrorRates
from thinkfamily.synth.ids import (
    nhs_is_valid,
    nhs_numbers,
    ni_numbers,
    upn_is_valid,
    upns,
)
from thinkfamily.synth.render import IDENTIFIERS


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    base = tmp_path_factory.mktemp("city")
    summary = generate_city(SCALES["tiny"], 7, base / "raw", base / "truth")
    return base, summary


def test_same_seed_gives_identical_bytes(city, tmp_path):
    base, _ = city
    generate_city(SCALES["tiny"], 7, tmp_path / "raw", tmp_path / "truth")
    assert _digest(base / "raw") == _digest(tmp_path / "raw")
    assert _digest(base / "truth") == _digest(tmp_path / "truth")


def test_every_source_writes_files_under_its_own_folder(city):
    base, summary = city
    for src in catalog():
        files = list((base / "raw" / src.name).glob(f"*.{src.ext}"))
        assert files, src.name
    split = {s.name for s in catalog() if s.split != "none"}
    assert {"police_offenders", "school_attendance", "dwp_benefits"} <= split
    assert len(list((base / "raw" / "police_offenders").iterdir())) == 3  # one per financial year
    assert summary["total_rows"] == sum(summary["rows"].values())


def test_generated_identifiers_are_valid():
    rng = np.random.default_rng(0)
    nhs = nhs_numbers(rng, 5000)
    assert nhs_is_valid(nhs).all() and len(set(nhs)) == 5000
    assert list(nhs_is_valid(np.array(["9434765919", "9434765918", "123", None]))) == [True, False, False, False]
    u = upns(rng, 500, np.full(500, 2015))
    assert upn_is_valid(u).all() and all(len(x) == 13 for x in u)
    ni = ni_numbers(rng, 500)
    assert all(x[:2] not in {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"} and x[0] not in "DFIQUV" and x[-1] in "ABCD" for x in ni)


def test_nhs_numbers_in_extracts_are_valid_except_deliberate_corruptions(city):
    base, _ = city
    links = pd.read_parquet(base / "truth" / "record_links.parquet")
    persons = pd.read_parquet(base / "truth" / "persons.parquet").set_index("person_id")
    checked = 0
    for src in catalog():
        nhs_cols = [c for c in src.columns if c.attr == "nhs_number"]
        if not nhs_cols:
            continue
        for path in sorted((base / "raw" / src.name).iterdir()):
            df = _read(src, path)
            key = next(c.name for c in src.columns if c.key)
            for c in nhs_cols:
                got = df[[key, c.name]].dropna()
                bad = got[~nhs_is_valid(got[c.name].to_numpy())]
                lk = links[(links.source == src.name) & (links.role == c.role)].set_index("record_key")
                corrupted = lk.reindex(bad[key]).errors.fillna("").str.contains("nhs_corrupt")
                assert corrupted.all(), f"{src.name}: invalid NHS numbers without a recorded corruption"
                ok = got[nhs_is_valid(got[c.name].to_numpy())]
                true = persons.nhs_number.reindex(lk.reindex(ok[key]).person_id).to_numpy()
                assert (ok[c.name].to_numpy() == true).all()
                checked += len(got)
    assert checked > 100


def _read(src, path: Path) -> pd.DataFrame:
    if src.format == "parquet":
        return pd.read_parquet(path)
    if src.format == "json":
        rows = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a deliberately truncated record
        return pd.DataFrame(rows, dtype=object)
    if src.format == "csv":
        return pd.read_csv(path, sep=src.options.get("delimiter", ","), dtype=str, encoding=src.options.get("encoding", "utf-8"),
                           on_bad_lines="skip", index_col=False, keep_default_na=False, na_values=[""])
    raise AssertionError(src.format)


def test_each_source_carries_only_its_agencys_identifiers():
    for src in catalog():
        used = {c.attr for c in src.columns if c.role and c.attr in IDENTIFIERS}
        assert used <= set(src.allowed_identifiers), f"{src.name} ({src.agency}) carries {used - set(src.allowed_identifiers)}"
    by_name = {s.name: s for s in catalog()}
    assert not any(c.attr == "nhs_number" for s in catalog() if s.agency == "police" for c in s.columns)
    assert {c.attr for c in by_name["dwp_benefits"].columns if c.role} >= {"ni_number"}
    assert {c.attr for c in by_name["school_attendance"].columns if c.role} >= {"upn"}


def test_truth_covers_every_record_and_keys_are_unique(city):
    base, _ = city
    links = pd.read_parquet(base / "truth" / "record_links.parquet")
    bad = pd.read_parquet(base / "truth" / "malformed_rows.parquet")
    for src in catalog():
        if not src.roles:
            continue
        key = next(c.name for c in src.columns if c.key)
        keys = []
        for path in sorted((base / "raw" / src.name).iterdir()):
            if src.format in ("csv", "json", "parquet"):
                keys += _read(src, path)[key].dropna().tolist()
        lk = links[links.source == src.name]
        if keys:
            assert set(keys) <= set(lk.record_key), src.name
            assert len(keys) == len(set(keys)), f"{src.name}: duplicate record keys"
        assert lk.person_id.notna().all()
    assert set(bad.kind) >= {"wrong_field_count", "bad_date", "bad_number", "missing_key", "truncated_record"}
    assert (bad.groupby(["source", "file"]).size() <= ErrorRates().malformed_per_file).all()


def test_malformed_rows_are_where_truth_says(city):
    base, _ = city
    bad = pd.read_parquet(base / "truth" / "malformed_rows.parquet")
    by_name = {s.name: s for s in catalog()}
    for row in bad[bad.kind == "wrong_field_count"].itertuples():
        src = by_name[row.source]
        if src.format != "csv":
            continue
        text = (base / "raw" / row.source / row.file).read_bytes().decode(src.options.get("encoding", "utf-8")).splitlines()
        assert text[row.line - 1].endswith(src.options.get("delimiter", ",") + "EXTRA")
    for row in bad[bad.kind == "truncated_record"].itertuples():
        line = (base / "raw" / row.source / row.file).read_text(encoding="utf-8").splitlines()[row.line - 1]
        with pytest.raises(json.JSONDecodeError):
            json.loads(line)


def test_error_rates_within_tolerance_of_configured_rates(tmp_path):
    summary = generate_city(300, 3, tmp_path / "raw", tmp_path / "truth")
    links = pd.read_parquet(tmp_path / "truth" / "record_links.parquet")
    rates = ErrorRates()
    n = len(links)
    named = links.errors.str.split(";").explode()
    for kind, rate in (("typo", rates.typo), ("name_swap", rates.name_swap), ("hyphenated_surname", rates.hyphenated_surname)):
        got = (named == kind).sum()
        sd = np.sqrt(n * rate * (1 - rate))
        assert abs(got - n * rate) < 4 * sd + 3, f"{kind}: {got} of {n}, expected ~{n * rate:.0f}"
    dup = links.drop_duplicates(["source", "record_key"]).is_duplicate.mean()
    assert abs(dup - rates.duplicate_record) < 0.006
    assert summary["injected_errors"]["dob_swap"] > 0 and summary["injected_errors"]["stale_address"] > 0


def test_cohort_truth_holds_probabilities_and_labels(city):
    base, summary = city
    cse = pd.read_parquet(base / "truth" / "cohort_cse.parquet")
    assert list(cse.columns) == ["person_id", "family_id", "period_start", "true_prob", "permitted_prob", "label",
                                 "label_date"]
    assert cse.true_prob.between(0, 1).all() and cse.permitted_prob.between(0, 1).all()
    # sex held at its mean: girls' permitted probability is lower than their true one, boys' higher
    sexes = pd.read_parquet(base / "truth" / "persons.parquet")[["person_id", "sex"]]
    girls = cse.merge(sexes, on="person_id").query("sex == 'F'")
    assert (girls.permitted_prob < girls.true_prob).all()
    assert cse.label.sum() == summary["cohort_cse"]
    assert (cse.label == cse.label_date.notna()).all()
    assert cse.groupby("person_id").label.sum().max() <= 1  # flagged at most once
    flags = sum(1 for p in (base / "raw" / "csc_exploitation").iterdir() for _ in p.open(encoding="utf-8")) - 1
    assert flags >= summary["cohort_cse"]  # plus deliberate duplicate records


def test_recording_bias_adds_police_records_only_in_the_biased_area(tmp_path):
    from dataclasses import replace

    from thinkfamily.synth.config import SynthConfig

    cfg = replace(SynthConfig(families=150, seed=5), bias_area="BS5", bias_factor=3.0)
    generate_city(150, 5, tmp_path / "raw", tmp_path / "truth", config=cfg)
    ev = pd.read_parquet(tmp_path / "truth" / "events.parquet")
    persons = pd.read_parquet(tmp_path / "truth" / "persons.parquet").set_index("person_id")
    biased = ev[ev.recording_bias]
    assert len(biased) > 0
    assert (persons.district.reindex(biased.person_id) == "BS5").all()
    assert set(biased.event_type) <= {"offence", "crime_victim", "asb_incident", "missing_episode", "intelligence_marker",
                                       "da_incident", "asb_intervention", "probation",
                                       # police DA notifications trigger referrals, and the CSC cascade follows
                                       "cs_referral", "cs_assessment", "child_in_need", "cp_plan", "looked_after"}


def test_truth_timestamps_are_readable_by_spark(city):
    """Spark rejects parquet TIMESTAMP(NANOS): truth must be written in microseconds."""
    import pyarrow.parquet as pq

    base, _ = city
    files = sorted((base / "truth").glob("*.parquet"))
    assert files
    for f in files:
        for name, typ in zip(pq.read_schema(f).names, pq.read_schema(f).types):
            assert "ns" not in str(typ), f"{f.name}: {name} is {typ}"

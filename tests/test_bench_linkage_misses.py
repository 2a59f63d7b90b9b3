"""bench/linkage_misses.py: split people described by the evidence their fragments share (no Spark)."""
from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import write_deltalake

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import linkage_misses  # noqa: E402

D = dt.date


def _record(rid, source, fn, ln, dob, postcode, valid=False):
    return {"record_id": rid, "source": source, "first_name_canonical": fn, "first_name_folded": fn,
            "last_name_folded": ln, "dob": dob, "sex": "F", "postcode": postcode, "uprn": None,
            "nhs_number_valid": valid, "upn_valid": False, "ni_number_valid": False}


def test_missed_fragments_are_described_and_their_pairs_add_up(tmp_path):
    # T1: 3 records, our P1 holds two, P2 the third (same first name and dob, new surname and postcode)
    # T2: 2 records, our P3 holds one, P4 the other (a name-only mention: no dob, same surname)
    # T3: exactly linked
    links = [("r1", "gp", "1", "patient", "P1", "T1"), ("r2", "school", "1", "pupil", "P1", "T1"),
             ("r3", "police", "1", "victim", "P2", "T1"), ("r4", "gp", "2", "patient", "P3", "T2"),
             ("r5", "school", "2", "parent", "P4", "T2"), ("r6", "gp", "3", "patient", "P5", "T3")]
    records = [_record("r1", "gp", "amy", "smith", D(2010, 1, 2), "BS1 1AA", True),
               _record("r2", "school", "amy", "smith", D(2010, 1, 2), "BS1 1AA"),
               _record("r3", "police", "amy", "jones", D(2010, 1, 2), "BS5 5ZZ"),
               _record("r4", "gp", "bob", "brown", D(1980, 3, 4), "BS2 2BB"),
               _record("r5", "school", "rob", "brown", None, "BS2 2BB"),
               _record("r6", "gp", "cat", "green", D(1990, 5, 6), "BS3 3CC")]
    lake = tmp_path / "lake"
    write_deltalake(str(lake / "silver" / "person_link"), pa.Table.from_pylist(
        [dict(zip(("record_id", "source", "record_key", "role", "person_id"), r[:5])) for r in links]))
    write_deltalake(str(lake / "silver" / "person_record_identifiable"), pa.Table.from_pylist(records))
    truth = tmp_path / "truth"
    truth.mkdir()
    pq.write_table(pa.Table.from_pylist([{"source": r[1], "record_key": r[2], "role": r[3], "person_id": r[5]}
                                         for r in links]), truth / "record_links.parquet")

    out = tmp_path / "misses.json"
    assert linkage_misses.main([str(lake), str(truth), "--json", str(out)]) == 0
    import json
    got = json.loads(out.read_text())
    assert got["true_pairs"] == 3 + 1 and got["missed_fragments"] == 2
    # T1 misses 1 x 2 pairs, T2 1 x 1: 3 of 4 true pairs
    assert got["missed_pair_share"] == pytest.approx(3 / 4)
    assert got["by_evidence"]["first+dob"] == {"fragments": 1, "missed_pair_share": pytest.approx(2 / 4)}
    assert got["by_evidence"]["last+postcode"] == {"fragments": 1, "missed_pair_share": pytest.approx(1 / 4)}
    assert got["fragment_without_dob_share"] == pytest.approx(1 / 4)
    assert got["by_role"] == {"victim": pytest.approx(2 / 4), "parent": pytest.approx(1 / 4)}

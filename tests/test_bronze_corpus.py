"""The bad-input corpus (tests/data/bad): every case lands, fails or is quarantined as documented."""
from __future__ import annotations

import shutil
from pathlib import Path

import yaml
from bronze_helpers import land
from pyspark.sql import functions as F

from thinkfamily import lake

CORPUS = Path(__file__).parent / "data" / "bad"


def test_bad_corpus_is_explained_and_nothing_is_lost(spark, env, tmp_path):
    shutil.copytree(CORPUS / "sources", tmp_path / "schemas" / "sources")
    shutil.copytree(CORPUS / "raw", tmp_path / "data" / "raw")
    project = (env.model_copy(update={"root": str(tmp_path), "dq": env.dq.model_copy(update={"enabled": False})})
               .with_paths(raw=str(tmp_path / "data" / "raw"), lake=str(tmp_path / "lake")))
    expected = yaml.safe_load((CORPUS / "expected.yaml").read_text())
    assert sum(len(v) for v in expected.values()) >= 15

    results = land(spark, project)  # one run, all five sources: no exception escapes
    assert [(r.source, r.error) for r in results] == [(s, None) for s in sorted(expected)]

    log = {(r.source, r.path.rsplit("/", 1)[1]): r
           for r in lake.read(spark, project.table("bronze", "_ingestion_log")).collect()}
    on_disk = {(p.parent.name, p.name) for p in (tmp_path / "data" / "raw").glob("*/*")}
    assert set(log) == on_disk, "every raw file has exactly one log row"
    assert set(log) == {(s, f) for s, files in expected.items() for f in files}

    quarantine = lake.read(spark, project.table("bronze", "_quarantine")).groupBy("file").agg(
        F.count(F.lit(1)).alias("n"), F.collect_list("reason").alias("reasons")).collect()
    quarantined = {r.file: r for r in quarantine}
    landed = {}
    for source in expected:
        for r in lake.read(spark, project.table("bronze", source)).groupBy("_source_file").count().collect():
            landed[r["_source_file"]] = r["count"]

    for (source, name), want in ((k, expected[k[0]][k[1]]) for k in sorted(log)):
        row = log[(source, name)]
        where = f"{source}/{name}"
        assert row.status == want["status"], (where, row.status, row.reason)
        if want["status"] != "landed":
            assert want["reason"] in row.reason, (where, row.reason)
            assert (row.rows_landed, row.rows_quarantined) == (0, 0)
            assert row.path not in landed and row.path not in quarantined, where
            continue
        got_q = quarantined.get(row.path)
        assert (row.rows_landed, row.rows_quarantined) == (want["landed"], want["quarantined"]), where
        assert row.rows_read == row.rows_landed + row.rows_quarantined, where
        assert landed.get(row.path, 0) == want["landed"], where
        assert (got_q.n if got_q else 0) == want["quarantined"], where
        if "reason" in want:
            assert all(want["reason"] in reason for reason in got_q.reasons), (where, got_q.reasons)
        if "note" in want:
            assert row.reason == want["note"], (where, row.reason)

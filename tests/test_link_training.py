"""EM on a huge block trains on a repeatable record sample; DuckDB is capped (the Bristol-scale OOM);
a name swap counts once."""
from __future__ import annotations

import logging

import duckdb
import pyarrow as pa
import pytest

from thinkfamily.config import LinkageSettings
from thinkfamily.linkage.config import load_linkage_config
from thinkfamily.linkage.engine import _db_api, em_rule
from thinkfamily.linkage.prepare import LINKAGE_COLUMNS, prepare_records
from thinkfamily.linkage.settings import settings_dict


def _records(n: int, dobs: int) -> pa.Table:
    """n records over `dobs` dates of birth, every other column blank except ids and the bucket."""
    cols = {c: [None] * n for c in LINKAGE_COLUMNS}
    cols["unique_id"] = [f"r{i}" for i in range(n)]
    cols["source"] = ["s"] * n
    cols["dob"] = [f"2010-01-{1 + i % dobs:02d}" for i in range(n)]
    cols["em_bucket"] = [(i * 7919) % 1000 for i in range(n)]
    t = pa.table({c: pa.array(v, type=pa.string()) for c, v in cols.items() if c not in ("em_bucket",)})
    return t.append_column("em_bucket", pa.array(cols["em_bucket"], type=pa.int32()))


@pytest.fixture()
def linker(project_root):
    from splink import DuckDBAPI, Linker

    cfg = load_linkage_config(project_root)
    db = DuckDBAPI(connection=duckdb.connect(":memory:"))
    sdf = db.register(_records(2000, 4), table_name="tf_records")  # 4 blocks of 500: 499,000 pairs
    return Linker(sdf, settings_dict(cfg, "duckdb"), log_level=logging.WARNING), sdf.physical_name, cfg


def _rule():
    from thinkfamily.linkage.config import Rule

    return Rule(name="em_dob", columns=["dob"])


def test_small_blocks_train_on_every_record(linker):
    lk, table, _ = linker
    rule = em_rule(lk, _rule(), table, max_pairs=1_000_000)
    assert "em_bucket" not in rule.get_blocking_rule("duckdb").blocking_rule_sql


def test_a_huge_block_trains_on_a_sample_sized_to_the_cap(linker):
    lk, table, _ = linker
    sql = em_rule(lk, _rule(), table, max_pairs=10_000).get_blocking_rule("duckdb").blocking_rule_sql
    # sqrt(10,000 / 499,000) of 1000 buckets = 142 -> records with em_bucket < 142 on both sides
    assert sql == "l.dob = r.dob and l.em_bucket < 142 and r.em_bucket < 142"
    pairs = lk.misc.query_sql(
        f"select count(*) as n from {table} l join {table} r on l.unique_id < r.unique_id and {sql}",
        output_type="pandas")["n"][0]
    assert 5_000 < pairs < 20_000  # about the cap, from every block


def test_em_bucket_is_a_stable_hash_in_range(spark):
    from pyspark.sql import functions as F

    df = spark.createDataFrame([(f"src|{i}|child",) for i in range(200)], "record_id string")
    for c in ("source", "first_name_folded", "first_name_canonical", "last_name_folded", "dob", "sex", "postcode",
              "postcode_district", "uprn", "address_line1", "nhs_number", "nhs_number_valid", "upn", "upn_valid",
              "ni_number", "ni_number_valid"):
        df = df.withColumn(c, F.lit(None).cast("string"))
    a = [r.em_bucket for r in prepare_records(df).orderBy("unique_id").collect()]
    b = [r.em_bucket for r in prepare_records(df).orderBy("unique_id").collect()]
    assert a == b and all(0 <= x < 1000 for x in a) and len(set(a)) > 150


def test_duckdb_is_capped_and_spills_where_told(tmp_path):
    # the spill folder is nested under a lake that has no _tmp yet (DuckDB alone failed to create it)
    api = _db_api("duckdb", None, ("512MB", str(tmp_path / "lake" / "_tmp" / "spill")))
    got = dict(api._con.execute("select name, value from duckdb_settings() where name in "
                           "('memory_limit', 'temp_directory')").fetchall())
    assert got["memory_limit"].startswith("488") or "512" in got["memory_limit"]
    assert got["temp_directory"] == str(tmp_path / "lake" / "_tmp" / "spill")
    # force a spill: a sort larger than the cap must succeed, not fail on a missing folder
    n = api._con.execute("select count(*) from (select md5(i::varchar) || repeat('x', 200) as s "
                         "from range(3000000) t(i) order by s)").fetchone()[0]
    assert n == 3_000_000
    assert LinkageSettings().duckdb_memory_limit == "6GB"
    with pytest.raises(ValueError):
        LinkageSettings(duckdb_memory_limit="lots")


def test_a_name_swap_is_weighed_once_in_first_name_and_neutral_in_last_name(project_root):
    """Bug at 1x: the swap level sat in both name comparisons, so a swap alone scored ~31 bits and
    linked strangers called "Thomas James" and "James Thomas" with nothing else in common."""
    from splink import DuckDBAPI, Linker

    cfg = load_linkage_config(project_root)
    cols = {c: [None, None] for c in LINKAGE_COLUMNS}
    cols.update(unique_id=["a", "b"], source=["s", "t"], first_name_folded=["thomas", "james"],
                first_name_canonical=["thomas", "james"], last_name_folded=["james", "thomas"], em_bucket=[1, 2])
    t = pa.table({c: pa.array(v, type=pa.int32() if c == "em_bucket" else pa.string()) for c, v in cols.items()})
    sdf = DuckDBAPI(connection=duckdb.connect(":memory:")).register(t, table_name="tf_swap")
    linker = Linker(sdf, settings_dict(cfg, "duckdb"), log_level=logging.WARNING)
    pair = linker.inference.predict(warning_mode="never").as_pandas_dataframe()
    assert len(pair) == 1                                  # the name_swap blocking rule pairs them
    levels = {c: pair[c][0] for c in pair.columns if c.startswith("gamma_")}
    assert levels["gamma_first_name"] > 0                  # the swap level: evidence, once
    assert levels["gamma_last_name"] == -1                 # null-like: Bayes factor 1

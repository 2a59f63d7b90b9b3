"""Peer for the link stage: the same person records through a bare Splink DuckDB run.

    .venv/bin/python bench/linkage_peer.py --lake bench/work/small/lake --truth bench/work/small/truth

"Bare" = what a team would write with Splink alone: the prepared records the link stage hands to
Splink (silver/person_record_identifiable through `prepare_records`, exported once to parquet,
not timed), read by DuckDB with its default settings, the same Splink settings and training
recipe (conf/linkage.yaml, including EM on a record sample when a block is huge: without it EM on
`dob` alone pairs 176M records at Bristol scale), predict, cluster at the same link threshold. No deterministic identifier pass, no shared-child or
cannot-link rules, no stable ids, no families, no Delta. It runs in its own process, sampled like
the pipeline stages (wall, CPU, peak RSS), and both its clusters and the lake's silver/person_link
are scored against the generator's truth with the same code (`thinkfamily evaluate linkage`).
Prints and returns JSON; bench/pipeline.py calls it after the pipeline run.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

EXPORT = """
import sys
sys.path.insert(0, {root!r})
from pyspark.sql import functions as F
from thinkfamily.config import load_env
from thinkfamily.spark import get_spark
from thinkfamily.linkage.prepare import LINKAGE_COLUMNS, prepare_records
env = load_env({env!r})
spark = get_spark(env)
src = spark.read.format("delta").load({lake!r} + "/silver/person_record_identifiable")
prepare_records(src).select(*LINKAGE_COLUMNS).coalesce(1).write.mode("overwrite").parquet({out!r} + "/records")
src.select(F.col("record_id").alias("unique_id"), "source", "record_key", "role").coalesce(1) \\
   .write.mode("overwrite").parquet({out!r} + "/keys")
"""

BARE = """
import json, logging, resource, sys, time
sys.path.insert(0, {root!r})
t0 = time.perf_counter()
import duckdb
from splink import DuckDBAPI, Linker
from thinkfamily.linkage.config import load_linkage_config
from thinkfamily.linkage.engine import train
from thinkfamily.linkage.settings import settings_dict
cfg = load_linkage_config({root!r})
times = {{}}
t = time.perf_counter()
import pyarrow.parquet as pq
con = duckdb.connect(":memory:")
db = DuckDBAPI(connection=con)
records = db.register(pq.read_table("{out}/records"), table_name="tf_peer_records")
linker = Linker(records, settings_dict(cfg, "duckdb"), log_level=logging.WARNING)
times["load_s"] = time.perf_counter() - t
t = time.perf_counter(); train(linker, cfg, records.physical_name); times["train_s"] = time.perf_counter() - t
t = time.perf_counter()
pred = linker.inference.predict(threshold_match_probability=cfg.predict_threshold, warning_mode="never")
n_pairs = linker.misc.query_sql(f"select count(*) as n from {{pred.physical_name}}", output_type="pandas")["n"][0]
times["predict_s"] = time.perf_counter() - t
t = time.perf_counter()
clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(pred, cfg.link_threshold)
clusters.as_pyarrow_table().select(["unique_id", "cluster_id"]).to_pandas().to_parquet("{out}/clusters.parquet")
times["cluster_s"] = time.perf_counter() - t
times["total_s"] = time.perf_counter() - t0
print("PEER " + json.dumps({{"timings": {{k: round(v, 1) for k, v in times.items()}}, "pairs_scored": int(n_pairs),
      "ru_maxrss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)}}))
"""


def _score(links, truth: Path) -> dict:
    import pandas as pd

    from thinkfamily.linkage.evaluate import evaluate_linkage

    r = evaluate_linkage(pd.read_parquet(truth / "record_links.parquet"), pd.read_parquet(truth / "persons.parquet"), links)
    return {"pairwise": r["pairwise"], "clusters": r["clusters"]}


def run(lake: Path, truth: Path, env: Path, work: Path | None = None) -> dict:
    import pandas as pd
    from deltalake import DeltaTable
    from pipeline import measured  # bench/pipeline.py: the same process sampler as the stages

    work = work or Path(tempfile.mkdtemp(prefix="tf-peer-"))
    work.mkdir(parents=True, exist_ok=True)
    (work / "export.py").write_text(EXPORT.format(root=str(ROOT), env=str(env), lake=str(lake), out=str(work)))
    subprocess.run([sys.executable, str(work / "export.py")], check=True, capture_output=True)
    (work / "bare.py").write_text(BARE.format(root=str(ROOT), out=str(work)))
    m = measured([sys.executable, str(work / "bare.py")], {**os.environ, "PYTHONUNBUFFERED": "1"},
                 work / "bare.log")
    if m.get("exit_code"):
        raise SystemExit(f"bare Splink run failed (exit {m['exit_code']}): see {work / 'bare.log'}")
    line = next(ln for ln in (work / "bare.log").read_text().splitlines() if ln.startswith("PEER "))
    peer = json.loads(line[5:])
    keys = pd.read_parquet(work / "keys")
    clusters = pd.read_parquet(work / "clusters.parquet")
    bare_links = keys.merge(clusters, on="unique_id", how="left")
    bare_links["person_id"] = bare_links.cluster_id.fillna(bare_links.unique_id)
    ours = DeltaTable(str(lake / "silver" / "person_link")).to_pandas(columns=["source", "record_key", "role", "person_id"])
    return {
        "records": int(len(keys)),
        "bare_splink": {"wall_s": m["wall_s"], "cpu_s": m.get("cpu_s"), "peak_rss_gib": m.get("peak_rss_gib"), **peer,
                        **_score(bare_links[["source", "record_key", "role", "person_id"]], truth)},
        "ours": _score(ours, truth),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lake", type=Path, required=True)
    p.add_argument("--truth", type=Path, required=True)
    p.add_argument("--env", type=Path, default=None, help="env yaml for the export's Spark session [bench env]")
    p.add_argument("--work", type=Path, default=None)
    a = p.parse_args()
    env = a.env or next(iter(sorted(a.lake.parent.glob("env-*.yaml"))), ROOT / "conf" / "local.yaml")
    print(json.dumps(run(a.lake.resolve(), a.truth.resolve(), env, a.work), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Clustering study: can weak links be used without the chaining that wrecks precision?

    .venv/bin/python bench/clustering_study.py --work bench/work/x1/peer --truth bench/work/x1/truth

The threshold study (bench/threshold_study.py) showed that at Bristol scale connected components
below 0.99 chain weak pairs into giant clusters (precision ~0.68), while at 0.995 recall is 0.75.
This study keeps the strong clusters (connected components at the link threshold) and then adds
only **mutual-best** weak links: two strong clusters merge when a pair between them scores in
[low, link threshold) and each is the other's best-scoring partner. A cluster takes at most one
partner per round, so weak links cannot chain; rounds repeat the step on the merged clusters.
Scores the Splink model alone (as the threshold study does) for each low and round count.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from threshold_study import ROOT, score, trained_predictions  # noqa: E402

sys.path.insert(0, str(ROOT))

LOWS = (0.5, 0.8, 0.9, 0.95, 0.99)
ROUNDS = (1, 2, 3)

MUTUAL_BEST_SQL = """
with cl as (select unique_id, cluster_id from {clusters}),
weak as (
    select least(l.cluster_id, r.cluster_id) a, greatest(l.cluster_id, r.cluster_id) b, max(p.match_probability) p
    from {pred} p join cl l on p.unique_id_l = l.unique_id join cl r on p.unique_id_r = r.unique_id
    where p.match_probability >= {low} and l.cluster_id <> r.cluster_id
    group by all),
sides as (select a c, b partner, p from weak union all select b c, a partner, p from weak),
best as (select c, arg_max(partner, (p, partner)) partner from sides group by c),
mutual as (select x.c a, x.partner b from best x join best y on x.partner = y.c and y.partner = x.c where x.c < x.partner)
select cl.unique_id, coalesce(m1.a, cl.cluster_id) cluster_id
from cl left join mutual m1 on cl.cluster_id = m1.b
"""


def mutual_best(con, clusters: str, pred: str, low: float, out: str) -> int:
    """Write table ``out`` = ``clusters`` after one round of mutual-best merges; returns merges made."""
    con.execute(f"create or replace table {out} as " + MUTUAL_BEST_SQL.format(clusters=clusters, pred=pred, low=low))
    before = con.execute(f"select count(distinct cluster_id) from {clusters}").fetchone()[0]
    after = con.execute(f"select count(distinct cluster_id) from {out}").fetchone()[0]
    return before - after


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, required=True, help="bench/linkage_peer.py's folder (records/, keys/)")
    p.add_argument("--truth", type=Path, required=True)
    p.add_argument("--memory-limit", default="6GB")
    p.add_argument("--link-threshold", type=float, default=None, help="[conf/linkage.yaml link_threshold]")
    a = p.parse_args()

    import pandas as pd

    from thinkfamily.linkage.config import load_linkage_config

    thr = a.link_threshold or load_linkage_config(ROOT).link_threshold
    linker, pred = trained_predictions(a.work, a.memory_limit, min(LOWS))
    con = linker._db_api.duckdb_con
    strong = linker.clustering.cluster_pairwise_predictions_at_threshold(pred, thr)
    con.execute(f"create table tf_strong as select unique_id, cluster_id from {strong.physical_name}")
    keys = pd.read_parquet(a.work / "keys")
    truth_links = pd.read_parquet(a.truth / "record_links.parquet")
    truth_persons = pd.read_parquet(a.truth / "persons.parquet")

    def scored(table: str) -> dict:
        return score(keys, con.execute(f"select unique_id, cluster_id from {table}").fetch_df(), truth_links,
                     truth_persons)

    rows = [{"strategy": f"connected components at {thr}", **scored("tf_strong")}]
    print(json.dumps(rows[-1]), flush=True)
    for low in LOWS:
        current = "tf_strong"
        for rnd in range(1, max(ROUNDS) + 1):
            nxt = f"tf_mb_{str(low).replace('.', '')}_{rnd}"
            merges = mutual_best(con, current, pred.physical_name, low, nxt)
            current = nxt
            if rnd in ROUNDS:
                rows.append({"strategy": f"mutual best >= {low}, {rnd} round(s)", "merges": merges, **scored(current)})
                print(json.dumps(rows[-1]), flush=True)
    (a.work / "clustering_study.json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

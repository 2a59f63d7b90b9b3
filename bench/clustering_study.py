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


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, required=True, help="bench/linkage_peer.py's folder (records/, keys/)")
    p.add_argument("--truth", type=Path, required=True)
    p.add_argument("--memory-limit", default="6GB")
    p.add_argument("--link-threshold", type=float, default=None, help="[conf/linkage.yaml link_threshold]")
    a = p.parse_args()

    import pandas as pd

    from thinkfamily.linkage.config import load_linkage_config
    from thinkfamily.linkage.engine import _mutual_best  # the link stage's own merge step

    thr = a.link_threshold or load_linkage_config(ROOT).link_threshold
    linker, pred = trained_predictions(a.work, a.memory_limit, min(LOWS))
    db = linker._db_api
    strong = linker.clustering.cluster_pairwise_predictions_at_threshold(pred, thr)
    no_edges = db.register(pd.DataFrame({"unique_id_l": pd.Series(dtype=str), "unique_id_r": pd.Series(dtype=str),
                                         "match_probability": pd.Series(dtype=float),
                                         "identifier": pd.Series(dtype=str)}), table_name="tf_study_no_edges")
    keys = pd.read_parquet(a.work / "keys")
    truth_links = pd.read_parquet(a.truth / "record_links.parquet")
    truth_persons = pd.read_parquet(a.truth / "persons.parquet")

    def scored(clusters) -> dict:
        cl = clusters.as_pyarrow_table().select(["unique_id", "cluster_id"]).to_pandas()
        return score(keys, cl, truth_links, truth_persons)

    rows = [{"strategy": f"connected components at {thr}", **scored(strong)}]
    print(json.dumps(rows[-1]), flush=True)
    for low in LOWS:
        for rounds in ROUNDS:
            clusters, _, merges = _mutual_best(db, strong, no_edges, pred, low, rounds)
            rows.append({"strategy": f"mutual best >= {low}, {rounds} round(s)", "merges": int(merges),
                         **scored(clusters)})
            print(json.dumps(rows[-1]), flush=True)
    (a.work / "clustering_study.json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

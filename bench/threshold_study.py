"""Threshold study for the Splink model alone: pairwise precision/recall when clustering at each
link threshold, on records exported by bench/linkage_peer.py (its --work folder).

    .venv/bin/python bench/threshold_study.py --work bench/work/x1/peer --truth bench/work/x1/truth

Trains once (same recipe as the link stage), predicts at 0.5, then clusters at every threshold and
scores against the truth. It measures the probabilistic part only — the link stage adds the
deterministic identifier pass, the shared-child rules and cannot-link on top — so it shows how the
model's evidence behaves as the city grows, which is what the threshold choice rests on.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

THRESHOLDS = (0.5, 0.8, 0.9, 0.95, 0.99, 0.995, 0.999)


def trained_predictions(work: Path, memory_limit: str, threshold: float, linkage: Path | None = None):
    """(linker, predictions >= threshold) for the records bench/linkage_peer.py exported to ``work``,
    trained with the link stage's recipe (conf/linkage.yaml, or ``linkage``) on a capped DuckDB that
    spills under ``work``."""
    import duckdb
    import pyarrow.parquet as pq
    from splink import DuckDBAPI, Linker

    from thinkfamily.linkage.config import load_linkage_config
    from thinkfamily.linkage.engine import train
    from thinkfamily.linkage.settings import settings_dict

    cfg = load_linkage_config(ROOT, linkage)
    con = duckdb.connect(":memory:")
    spill = work / "duckdb_tmp"
    spill.mkdir(parents=True, exist_ok=True)
    con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute(f"SET temp_directory = '{spill}'")
    db = DuckDBAPI(connection=con)
    records = db.register(pq.read_table(work / "records"), table_name="tf_study_records")
    linker = Linker(records, settings_dict(cfg, "duckdb"), log_level=logging.WARNING)
    t0 = time.perf_counter()
    train(linker, cfg, records.physical_name)
    pred = linker.inference.predict(threshold_match_probability=threshold, warning_mode="never")
    print(f"trained and predicted in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return linker, pred


def model_summary(linker) -> dict:
    """lambda and each comparison level's m and u (what EM learnt; no records involved)."""
    model = linker.misc.save_model_to_json()
    out = {"lambda": model["probability_two_random_records_match"]}
    for c in model["comparisons"]:
        out[c["output_column_name"]] = [
            {"level": lv.get("label_for_charts"), "m": lv.get("m_probability"), "u": lv.get("u_probability")}
            for lv in c["comparison_levels"] if not lv.get("is_null_level")]
    return out


def score(keys, cl, truth_links, truth_persons) -> dict:
    """Pairwise P/R/F1 and people counts of clusters ``cl`` (unique_id, cluster_id) against the truth."""
    from thinkfamily.linkage.evaluate import evaluate_linkage

    links = keys.merge(cl, on="unique_id", how="left")
    links["person_id"] = links.cluster_id.fillna(links.unique_id)
    r = evaluate_linkage(truth_links, truth_persons, links[["source", "record_key", "role", "person_id"]])
    return {**{k: round(v, 4) for k, v in r["pairwise"].items() if isinstance(v, float)},
            "predicted_people": r["clusters"]["predicted_people"], "true_people": r["clusters"]["true_people"]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, required=True, help="bench/linkage_peer.py's folder (records/, keys/)")
    p.add_argument("--truth", type=Path, required=True)
    p.add_argument("--memory-limit", default="6GB")
    p.add_argument("--linkage", type=Path, default=None, help="a linkage yaml to study [conf/linkage.yaml]")
    p.add_argument("--thresholds", type=float, nargs="+", default=list(THRESHOLDS), help="link thresholds to cluster at")
    p.add_argument("--out", type=Path, default=None, help="results file [<work>/threshold_study.json]")
    a = p.parse_args()

    import pandas as pd

    linker, pred = trained_predictions(a.work, a.memory_limit, min(a.thresholds), a.linkage)
    keys = pd.read_parquet(a.work / "keys")
    truth_links = pd.read_parquet(a.truth / "record_links.parquet")
    truth_persons = pd.read_parquet(a.truth / "persons.parquet")
    params = model_summary(linker)
    print(json.dumps(params), file=sys.stderr, flush=True)
    rows = []
    for thr in a.thresholds:
        clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(pred, thr)
        cl = clusters.as_pyarrow_table().select(["unique_id", "cluster_id"]).to_pandas()
        rows.append({"threshold": thr, **score(keys, cl, truth_links, truth_persons)})
        print(json.dumps(rows[-1]), flush=True)
    (a.out or a.work / "threshold_study.json").write_text(json.dumps({"thresholds": rows, "model": params}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

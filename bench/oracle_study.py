"""Why does a model beat the generator's oracle? A study on a lake built from a synthetic city.

    .venv/bin/python bench/oracle_study.py --env bench/work/x1-em/env-dq.yaml \
        --truth bench/work/x1-em/truth --model cse [--json out.json]

The oracle (docs/models.md, "Oracles") is the generator's true probability of each child's cohort
flag. On honest labels no model can rank better; at 1x Bristol ours did (roc_auc 0.82 against
0.76, on the rows whose linkage is exact). This study rebuilds the training frame the way
`thinkfamily train` does, fits every candidate on the train anchors and, on the test rows with a
true probability, compares model and oracle AUC on: all rows, exact-linkage rows, and the rest.
It also joins the generator's own labels (truth/cohort_<model>.parquet) to our labels on exact
rows: a label we see that the generator did not draw (or the reverse) is a labelling fault, not a
modelling one. Prints counts and AUCs only; no identifiers.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score


def _auc(y: np.ndarray, s: np.ndarray) -> float | None:
    ok = np.isfinite(s)
    y, s = y[ok], s[ok]
    return round(float(roc_auc_score(y, s)), 4) if 0 < y.sum() < len(y) else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", required=True)
    parser.add_argument("--truth", required=True)
    parser.add_argument("--model", default="cse")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)

    from pyspark.sql import functions as F

    from ml import features as feat
    from ml.modelconf import load_model_config
    from ml.explain import factor_labels
    from ml.train import build_frame, fit_candidate, split_frame
    from thinkfamily.config import load_env
    from thinkfamily.spark import get_spark

    env = load_env(args.env)
    cfg = load_model_config(env.root, args.model)
    spark = get_spark(env)
    pdf = build_frame(spark, env, cfg, truth=args.truth)
    train, test = split_frame(pdf, cfg)
    labels = factor_labels(cfg.features, None)

    # the generator's own label for each of our exact persons at each anchor
    link = spark.read.format("delta").load(env.table("silver", "person_link"))
    id_map = feat.truth_id_map(spark.read.parquet(str(Path(args.truth) / "record_links.parquet")), link)
    drawn = (spark.read.parquet(str(Path(args.truth) / f"cohort_{cfg.name}.parquet"))
             .select(F.col("person_id").cast("string").alias("true_person_id"),
                     F.to_date("period_start").alias("anchor_date"), F.col("label").alias("drawn_label")))
    drawn_pdf = (id_map.join(drawn, "true_person_id").select("person_id", "anchor_date", "drawn_label").toPandas())
    test = test.merge(drawn_pdf, on=["person_id", "anchor_date"], how="left")

    y = test["label"].to_numpy().astype(int)
    tp = test["true_prob"].to_numpy(dtype=float)
    known = np.isfinite(tp)
    exact = test["linkage_exact"].eq(True).to_numpy() & known
    rest = known & ~exact
    groups = {"known": known, "exact": exact, "not_exact": rest}
    out: dict = {
        "model": cfg.name, "test_rows": len(test), "test_positives": int(y.sum()),
        "rows": {g: int(m.sum()) for g, m in groups.items()},
        "positives": {g: int(y[m].sum()) for g, m in groups.items()},
        "oracle_auc": {g: _auc(y[m], tp[m]) for g, m in groups.items()},
        "mean_true_prob": {g: round(float(tp[m].mean()), 4) if m.any() else None for g, m in groups.items()},
        "candidates": {},
    }
    d = test["drawn_label"]
    ex = exact & d.notna().to_numpy()
    dl = d.eq(True).to_numpy()
    out["labels_on_exact_rows"] = {
        "ours_1_drawn_1": int((ex & (y == 1) & dl).sum()), "ours_1_drawn_0": int((ex & (y == 1) & ~dl).sum()),
        "ours_0_drawn_1": int((ex & (y == 0) & dl).sum()), "ours_0_drawn_0": int((ex & (y == 0) & ~dl).sum()),
    }
    for cand in cfg.candidates:
        model = fit_candidate(cfg, cand, train, labels)
        s = model.predict(test)
        out["candidates"][cand.name] = {g: _auc(y[m], s[m]) for g, m in groups.items()}
        out["candidates"][cand.name]["exact_drawn_labels"] = _auc(dl[ex].astype(int), s[ex])
    out["oracle_auc"]["exact_drawn_labels"] = _auc(dl[ex].astype(int), tp[ex])
    print(json.dumps(out, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How far apart are two link runs? Pairwise agreement of two versions of silver/person_link.

    .venv/bin/python bench/compare_link_versions.py --lake bench/work/x1-lowmem/lake --a 3 --b 5

Used to compare an incremental link run (version a) with a full relink of the same records
(version b): pairwise precision / recall / F1 of a's people taking b's as the reference, the
share of b's people that a reproduces exactly, and how link methods moved. Counts only; no
identifiers are printed.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lake", required=True)
    parser.add_argument("--a", type=int, required=True, help="person_link version compared (e.g. incremental)")
    parser.add_argument("--b", type=int, required=True, help="person_link version taken as the reference (full)")
    args = parser.parse_args(argv)

    from deltalake import DeltaTable

    from thinkfamily.linkage.evaluate import cluster_metrics, pairwise

    path = str(Path(args.lake) / "silver" / "person_link")
    cols = ["record_id", "person_id", "link_method"]
    a = DeltaTable(path, version=args.a).to_pandas(columns=cols)
    b = DeltaTable(path, version=args.b).to_pandas(columns=cols)
    both = a.merge(b, on="record_id", how="outer", suffixes=("_a", "_b"), indicator=True)
    only = both["_merge"].value_counts().to_dict()
    both = both[both["_merge"] == "both"].rename(columns={"person_id_b": "true_id", "person_id_a": "pred_id"})
    moved = both.groupby(["link_method_b", "link_method_a"]).size()
    out = {
        "records": {"both": int(only.get("both", 0)), "only_a": int(only.get("left_only", 0)),
                    "only_b": int(only.get("right_only", 0))},
        "pairwise_a_vs_b": {k: (round(v, 6) if isinstance(v, float) else v) for k, v in pairwise(both).items()},
        "clusters": {k: (round(v, 6) if isinstance(v, float) else v) for k, v in cluster_metrics(both).items()},
        "link_method_changes": {f"{i} -> {j}": int(n) for (i, j), n in moved.items() if i != j},
        "same_person_id_share": round(float((both.true_id == both.pred_id).mean()), 6),
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

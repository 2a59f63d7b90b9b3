"""Markdown tables from bench/results/*.json, for docs/benchmarks.md (numbers are never typed by hand).

    .venv/bin/python bench/report.py small x0.1 x0.3 x1
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
STAGES = ("bronze", "silver", "link", "gold", "train", "score")


def load(label: str) -> dict:
    return json.loads((RESULTS / f"{label}.json").read_text())


def _cell(m: dict | None) -> str:
    if not m or "wall_s" not in m:
        return "—"
    py = f" (Python {m['peak_rss_python_gib']})" if m.get("peak_rss_python_gib") is not None else ""
    if m.get("peak_rss_jvm_gib") is not None:  # results from 2026-11-28 (afternoon) on: memory by process kind
        py = (f" (Python {m['peak_rss_python_gib']}, JVM {m['peak_rss_jvm_gib']}, other {m['peak_rss_other_gib']};"
              f" PSS {m['peak_pss_gib']})")
    return f"{m['wall_s']} s / {m.get('cpu_s')} s / {m.get('peak_rss_gib')} GiB{py}"


def families(r: dict) -> str:
    return f"{r['families']:,}" if r.get("families") else {"tiny": "97", "small": "1,902", "bristol": "54,000"}[r["scale"]]


def stage_table(results: list[dict]) -> str:
    head = "| stage: wall / CPU / peak RSS (tree, Python driver) | " + " | ".join(
        f"{r['label']} ({families(r)} families)" for r in results) + " |"
    rows = [head, "|---|" + "---|" * len(results)]
    rows.append("| raw rows read (bronze) | " + " | ".join(
        f"{r['stages'].get('bronze', {}).get('summary', {}).get('rows_read', '—'):,}" for r in results) + " |")
    rows.append("| floor: raw text → Delta | " + " | ".join(_cell(r["floor"]) for r in results) + " |")
    for s in STAGES:
        rows.append(f"| {s} | " + " | ".join(_cell(r["stages"].get(s)) for r in results) + " |")
    rows.append("| **pipeline bronze → score** | " + " | ".join(
        f"**{r['pipeline_wall_s']} s** ({r['pipeline_over_floor']}× floor), peak {r['pipeline'].get('peak_rss_gib')} GiB"
        for r in results) + " |")
    return "\n".join(rows)


def peer_table(results: list[dict]) -> str:
    rows = ["| scale | records | our link stage | bare Splink DuckDB | ratio | our P / R / F1 | bare P / R / F1 |",
            "|---|---:|---:|---:|---:|---|---|"]
    for r in results:
        p = r.get("linkage_peer") or {}
        if "bare_splink" not in p:
            continue
        b, o = p["bare_splink"], p["ours"]
        prf = lambda x: f"{x['pairwise']['precision']:.4f} / {x['pairwise']['recall']:.4f} / {x['pairwise']['f1']:.4f}"  # noqa: E731
        rows.append(f"| {r['label']} | {p['records']:,} | {p['link_stage_wall_s']} s, "
                    f"{r['stages']['link'].get('peak_rss_gib')} GiB | {b['wall_s']} s, {b['peak_rss_gib']} GiB "
                    f"(train {b['timings']['train_s']} s, predict {b['timings']['predict_s']} s, cluster "
                    f"{b['timings']['cluster_s']} s) | {p['link_over_bare']}× | {prf(o)} | {prf(b)} |")
    return "\n".join(rows)


def main(labels: list[str]) -> int:
    missing = [x for x in labels if not (RESULTS / f"{x}.json").exists()]
    if missing:
        print(f"no results yet for {missing} (bench/results/<label>.json)", file=sys.stderr)
    results = [load(x) for x in labels if x not in missing]
    print(stage_table(results))
    print()
    print(peer_table(results))
    for r in results:
        if "gx_off" in r:
            g = r["gx_off"]
            print(f"\nGX ({r['label']}): bronze..gold {g['wall_s_on']} s with validation, {g['wall_s_off']} s without "
                  f"= {g['gx_share_of_data_stages']:.1%} of the data stages; per stage off: "
                  + ", ".join(f"{k} {v['wall_s']} s" for k, v in g["stages"].items()))
        if "incremental" in r:
            i = r["incremental"]
            print(f"\nIncremental ({r['label']}): {sum(i['rows_added'].values())} new rows in {len(i['rows_added'])} "
                  f"sources -> {i['wall_s']} s = {i['share_of_full']:.1%} of the full nightly run ({i['full_nightly_wall_s']} s"
                  f" without training); per stage: " + ", ".join(f"{k} {v['wall_s']} s" for k, v in i["stages"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["small"]))

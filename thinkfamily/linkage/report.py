"""HTML linkage report under <lake>/_reports/linkage/<timestamp>/: counts, blocking sizes,
cluster sizes, unlinked records by source and Splink's model charts. Only aggregate numbers
and match weights appear — never a name, date of birth, identifier or address."""
from __future__ import annotations

import datetime as dt
import html
import json
from pathlib import Path
from typing import Any

from thinkfamily.config import EnvConfig


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "<p>(none)</p>"
    cols = list(rows[0])
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(r.get(c, '')))}</td>" for c in cols) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render(summary: dict[str, Any], chart_files: list[str]) -> str:
    facts = [{"measure": k, "value": v} for k, v in summary.items() if not isinstance(v, (list, dict))]
    facts += [{"measure": f"records linked by {k}", "value": v} for k, v in sorted(summary["link_methods"].items())]
    facts += [{"measure": f"ids {k}", "value": v} for k, v in sorted(summary["id_changes"].items())]
    unlinked = [{**r, "unlinked_share": f"{(r['unlinked'] or 0) / max(r['records'], 1):.1%}"} for r in summary["by_source"]]
    charts = "".join(
        f'<h3>{html.escape(Path(f).stem.replace("_", " "))}</h3><iframe src="{html.escape(f)}" width="100%" height="520"></iframe>'
        for f in chart_files
    )
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>thinkfamily linkage report</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;margin-bottom:1.5em}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}iframe{{border:0}}</style></head><body>
<h1>Person linkage report</h1>
<p>Aggregate counts only. Waterfall charts show match weights of pseudonymised pairs (no record values).</p>
<h2>Run</h2>{_table(facts)}
<h2>Blocking rules (comparisons generated)</h2>{_table(summary["blocking"])}
<h2>Unlinked records by source</h2>{_table(unlinked)}
<h2>Cluster sizes</h2>{_table(summary["cluster_sizes"])}
<h2>Timings (seconds)</h2>{_table([summary["timings"]])}
<h2>Model</h2>{charts or "<p>(charts not produced)</p>"}
</body></html>"""


def write_report(env: EnvConfig, summary: dict[str, Any], out, links=None) -> str:
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    d = Path(env.lake) / "_reports" / "linkage" / stamp
    d.mkdir(parents=True, exist_ok=True)
    files = []
    for name, page in out.charts.items():
        (d / f"{name}.html").write_text(page, encoding="utf-8")
        files.append(f"{name}.html")
    (d / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    (d / "index.html").write_text(render(summary, files), encoding="utf-8")
    return str(d / "index.html")

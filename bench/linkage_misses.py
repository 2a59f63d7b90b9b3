"""What the missed links look like: every true person our linkage split, fragment by fragment.

    .venv/bin/python bench/linkage_misses.py bench/work/x1/lake bench/work/x1/truth [--json out.json]

For each true person whose records sit in more than one of our persons, the largest fragment is
the "main" one and every other fragment is a miss. Each missed fragment is described by what its
records share with the main fragment (the evidence a rule could use) and by where it came from
(sources, whether it has a date of birth, whether it is a name-only parent mention). Missed
pairs are counted as |fragment| x |main| so the shares add up to the recall lost between them.
Reads the lake with the `deltalake` package and works in DuckDB: no Spark, no identifiers printed.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import duckdb
from deltalake import DeltaTable

RECORD_COLS = ["record_id", "source", "first_name_canonical", "first_name_folded", "last_name_folded", "dob", "sex",
               "postcode", "uprn", "nhs_number_valid", "upn_valid", "ni_number_valid"]


def load(con: duckdb.DuckDBPyConnection, lake: Path, truth: Path) -> None:
    link = DeltaTable(str(lake / "silver" / "person_link")).to_pyarrow_table(
        columns=["record_id", "source", "record_key", "role", "person_id"])
    rec = DeltaTable(str(lake / "silver" / "person_record_identifiable")).to_pyarrow_table(columns=RECORD_COLS)
    con.register("link_a", link)
    con.register("rec_a", rec)
    con.execute(f"create table truth as select source, record_key, role, cast(person_id as varchar) true_id "
                f"from read_parquet('{truth / 'record_links.parquet'}')")
    con.execute("""
        create table r as
        select l.record_id, l.source, l.role, l.person_id pred_id, t.true_id,
               x.first_name_canonical fn, x.last_name_folded ln, x.dob, x.sex, x.postcode, x.uprn,
               coalesce(x.nhs_number_valid, false) or coalesce(x.upn_valid, false)
                   or coalesce(x.ni_number_valid, false) as has_id
        from link_a l join truth t using (source, record_key, role) join rec_a x using (record_id)""")
    con.execute("""
        create table frag as
        select true_id, pred_id, count(*) n,
               row_number() over (partition by true_id order by count(*) desc, pred_id) rank
        from r group by true_id, pred_id""")


def fragments(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """One row per missed fragment with its evidence against the main fragment."""
    return con.execute("""
        with main as (select true_id, pred_id main_id, n main_n from frag where rank = 1),
        missed as (select f.true_id, f.pred_id, f.n, m.main_id, m.main_n from frag f join main m using (true_id)
                   where f.rank > 1),
        side as (select m.true_id, m.pred_id, m.n, m.main_n,
                        list_distinct(list(r.fn)) fns, list_distinct(list(r.ln)) lns,
                        list_distinct(list(r.dob)) dobs, list_distinct(list(r.postcode)) pcs,
                        list_distinct(list(r.sex)) sexes, list_distinct(list(r.source)) srcs,
                        list_distinct(list(r.role)) roles, bool_or(r.has_id) has_id,
                        bool_and(r.dob is null) no_dob
                 from missed m join r on r.pred_id = m.pred_id and r.true_id = m.true_id
                 group by all),
        mainside as (select m.true_id, list_distinct(list(r.fn)) fns, list_distinct(list(r.ln)) lns,
                            list_distinct(list(r.dob)) dobs, list_distinct(list(r.postcode)) pcs,
                            bool_or(r.has_id) has_id
                     from main m join r on r.pred_id = m.main_id and r.true_id = m.true_id group by all)
        select s.n, s.main_n, s.srcs, s.roles, s.no_dob, s.has_id, ms.has_id main_has_id,
               len(list_intersect(s.fns, ms.fns)) > 0 same_first,
               len(list_intersect(s.lns, ms.lns)) > 0 same_last,
               len(list_intersect(s.dobs, ms.dobs)) > 0 same_dob,
               len(list_intersect(s.pcs, ms.pcs)) > 0 same_postcode
        from side s join mainside ms using (true_id)""").fetch_df().to_dict("records")


def summarise(rows: list[dict], total_true_pairs: int) -> dict:
    def share(pred) -> float:
        return sum(r["n"] * r["main_n"] for r in rows if pred(r)) / max(total_true_pairs, 1)

    def evidence(r: dict) -> str:
        parts = [name for name, key in (("first", "same_first"), ("last", "same_last"), ("dob", "same_dob"),
                                        ("postcode", "same_postcode")) if r[key]]
        return "+".join(parts) or "nothing"

    by_evidence: dict[str, dict] = {}
    for r in rows:
        e = by_evidence.setdefault(evidence(r), {"fragments": 0, "missed_pair_share": 0.0})
        e["fragments"] += 1
        e["missed_pair_share"] += r["n"] * r["main_n"] / max(total_true_pairs, 1)
    by_source: dict[str, float] = {}
    for r in rows:
        for s in r["srcs"]:
            by_source[s] = by_source.get(s, 0.0) + r["n"] * r["main_n"] / max(total_true_pairs, 1) / len(r["srcs"])
    by_role: dict[str, float] = {}
    for r in rows:
        for s in r["roles"]:
            by_role[s] = by_role.get(s, 0.0) + r["n"] * r["main_n"] / max(total_true_pairs, 1) / len(r["roles"])
    return {
        "missed_fragments": len(rows),
        "missed_pair_share": share(lambda r: True),
        "fragment_without_dob_share": share(lambda r: r["no_dob"]),
        "fragment_with_valid_identifier_share": share(lambda r: r["has_id"]),
        "by_evidence": dict(sorted(by_evidence.items(), key=lambda kv: -kv[1]["missed_pair_share"])),
        "by_source": dict(sorted(by_source.items(), key=lambda kv: -kv[1])[:15]),
        "by_role": dict(sorted(by_role.items(), key=lambda kv: -kv[1])),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("lake", type=Path)
    ap.add_argument("truth", type=Path)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--memory-limit", default="6GB")
    args = ap.parse_args(argv)
    con = duckdb.connect()
    con.execute(f"set memory_limit = '{args.memory_limit}'")
    load(con, args.lake, args.truth)
    total = con.execute("select sum(n * (n - 1) / 2) from (select true_id, count(*) n from r group by true_id)").fetchone()[0]
    out = summarise(fragments(con), int(total))
    out["true_pairs"] = int(total)
    text = json.dumps(out, indent=2, default=str)
    print(text)
    if args.json:
        args.json.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

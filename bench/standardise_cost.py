"""What each silver standardisation function costs on a real lake's person mentions.

Builds the person mentions of every bronze source of a lake (as the silver job does), caches
them, then times one Spark job per function (a ``noop`` write of that one column, best of two)
and the whole of ``standardise_persons``. A function whose time is far above its neighbours'
usually repeats a sub-expression per row (see ``thinkfamily.standardise._let``).

    .venv/bin/python bench/standardise_cost.py --env bench/work/<label>/env-dq.yaml

Prints seconds per function; reads the lake, writes nothing.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", required=True, help="an environment YAML whose lake has bronze tables")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args(argv)

    from pyspark.sql import functions as F

    from jobs.silver import _union, prepared_bronze
    from thinkfamily import lake, mapping
    from thinkfamily import standardise as S
    from thinkfamily.config import load_env
    from thinkfamily.sources import load_sources
    from thinkfamily.spark import get_spark

    env = load_env(args.env)
    spark = get_spark(env)
    sources = [s for s in load_sources(Path(env.root), None) if lake.exists(spark, env.table("bronze", s.name))]
    mentions = _union([lake.read(spark, env.table("bronze", s.name)).transform(prepared_bronze(s))
                       .transform(mapping.person_mentions(s)) for s in sources], spark, mapping.mention_schema())
    mentions = mentions.localCheckpoint(eager=True)
    print(f"{mentions.count():,} person mentions from {len(sources)} sources", flush=True)

    received = F.to_date("_ingested_at")
    parsed = S.parse_date(F.col("dob"), reference_date=received)
    columns = {
        "clean_name(first_name)": S.clean_name(F.col("first_name")),
        "fold_name(first_name)": S.fold_name(F.col("first_name")),
        "canonical_first_name": S.canonical_first_name(F.col("first_name"), sex=S.sex_code(F.col("sex"))),
        "split_full_name": S.split_full_name(F.col("full_name")),
        "parse_date(dob)": parsed,
        "date_flag(dob)": S.date_flag(F.col("dob"), parsed, reference_date=received),
        "sex_code": S.sex_code(F.col("sex")),
        "nhs_number_valid": S.nhs_number_valid(F.col("nhs_number")),
        "upn_valid": S.upn_valid(F.col("upn")),
        "ni_number_valid": S.ni_number_valid(F.col("ni_number")),
        "normalise_address_line": S.normalise_address_line(F.col("address_line1")),
        "standardise_postcode": S.standardise_postcode(F.col("postcode")),
    }

    def best(frame) -> float:
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            frame.write.format("noop").mode("overwrite").save()
            times.append(time.perf_counter() - t0)
        return min(times)

    print(f"{'scan only':32s} {best(mentions.select('record_id')):7.1f} s", flush=True)
    for name, column in columns.items():
        print(f"{name:32s} {best(mentions.select(column.alias('out'))):7.1f} s", flush=True)
    print(f"{'standardise_persons (all)':32s} {best(mentions.transform(mapping.standardise_persons)):7.1f} s", flush=True)


if __name__ == "__main__":
    main()

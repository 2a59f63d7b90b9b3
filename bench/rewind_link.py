"""Rewind a bench lake's link outputs to before its last link run, to time that run again.

    .venv/bin/python bench/rewind_link.py --env bench/work/x1-lowmem/env-dq.yaml
    .venv/bin/thinkfamily --env bench/work/x1-lowmem/env-dq.yaml link --no-report   # the same run, again

An incremental link run is measured once per incremental day, and a day can only be added once
to a lake. To compare code changes on the same day, this restores every table the link stage
writes (Delta RESTORE to just before the last run started) and points the previous run's
silver/link_run row at the restored versions, so the next link run sees exactly what the last
one saw. Bench lakes only: it rewrites history on purpose.
"""
from __future__ import annotations

import argparse
import sys

LINK_TABLES = ("person_link", "person", "person_identifiable", "person_address", "person_id_history",
               "family_member", "family", "family_id_history", "link_run")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", required=True)
    args = parser.parse_args(argv)

    from pyspark.sql import functions as F

    from thinkfamily import lake
    from thinkfamily.config import load_env
    from thinkfamily.spark import get_spark

    env = load_env(args.env)
    spark = get_spark(env)
    runs = lake.read(spark, env.table("silver", "link_run")).orderBy(F.desc("run_at"), F.desc("person_link_version"))
    last_two = runs.limit(2).collect()
    if len(last_two) < 2:
        print("fewer than two link runs recorded: nothing to rewind to", file=sys.stderr)
        return 1
    last, before = last_two
    stamp = last["run_at"].strftime("%Y-%m-%d %H:%M:%S")
    from delta.tables import DeltaTable

    for name in LINK_TABLES:
        path = env.table("silver", name)
        latest = DeltaTable.forPath(spark, path).history(1).first()["timestamp"]
        if latest > last["run_at"]:  # else the last run did not write this table
            spark.sql(f"RESTORE TABLE delta.`{path}` TO TIMESTAMP AS OF '{stamp}'")
    pl = lake.version(spark, env.table("silver", "person_link"))
    fm = lake.version(spark, env.table("silver", "family_member"))
    spark.sql(f"UPDATE delta.`{env.table('silver', 'link_run')}` SET person_link_version = {pl}, "
              f"family_member_version = {fm} WHERE run_at = '{before['run_at'].strftime('%Y-%m-%d %H:%M:%S')}'")
    print(f"rewound link outputs to before the {last['mode']} run of {stamp}; the {before['mode']} run of "
          f"{before['run_at']} is the last one now")
    return 0


if __name__ == "__main__":
    sys.exit(main())

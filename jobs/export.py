"""Analyst export: family counts per postcode district and indicator, with disclosure control.

Analysts get aggregates, never rows: for one gold snapshot, families per postcode district for
every indicator, headline problem (`cat_*`), eligibility (`eligible_tf`, `eligible_sf`) and the
population (`all`). Small numbers identify people in a district, so counts of 1-4 are suppressed
(null, `suppressed = true`) and every other count is rounded to the nearest 5, which also stops a
suppressed cell being recovered by differencing a total against the other cells (ONS-style
disclosure control; both thresholds are options). Zero is shown as 0: it discloses nothing.

Writes `<lake>/export/analyst_district_counts` (Delta, the snapshot replaced on re-run) and a CSV
copy for people without Spark. See docs/operations.md.
"""
from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from thinkfamily import lake
from thinkfamily.config import EnvConfig
from thinkfamily.submit import submit_main
from thinkfamily.errors import PipelineError

log = logging.getLogger(__name__)

TABLE = ("export", "analyst_district_counts")
UNKNOWN_DISTRICT = "unknown"
COLUMNS = ["snapshot_date", "district", "measure", "n_families", "suppressed"]


# --------------------------------------------------------------------------- pure transforms
def family_districts(members: DataFrame, person_address: DataFrame) -> DataFrame:
    """(family_id, district): where most of the family's current members currently live (ties: the
    alphabetically first district), from their current address's postcode outward code."""
    current_members = members.where(F.col("to_date").isNull()).select("family_id", "person_id")
    current_addr = (person_address.where(F.col("to_date").isNull() & F.col("postcode").isNotNull())
                    .select("person_id", F.upper(F.split(F.trim(F.col("postcode")), r"\s+")[0]).alias("district")))
    counts = (current_members.join(current_addr, on="person_id", how="inner")
              .where(F.col("district") != "")
              .groupBy("family_id", "district").agg(F.countDistinct("person_id").alias("n")))
    first = Window.partitionBy("family_id").orderBy(F.desc("n"), F.asc("district"))
    return (counts.withColumn("_rank", F.row_number().over(first)).where(F.col("_rank") == 1)
            .select("family_id", "district"))


def district_counts(measures: list[str]):
    """Families of one snapshot (+ district) -> long counts per (snapshot, district, measure)."""
    def transform(families: DataFrame) -> DataFrame:
        wide = families.groupBy("snapshot_date", "district").agg(
            F.count(F.lit(1)).alias("all"),
            *[F.sum(F.coalesce(F.col(m).cast("long"), F.lit(0))).alias(m) for m in measures])
        return wide.unpivot(["snapshot_date", "district"], ["all", *measures], "measure", "n_families").select(
            "snapshot_date", "district", "measure", F.col("n_families").cast("long").alias("n_families"))
    return transform


def disclosure_control(min_count: int = 5, round_to: int = 5):
    """Counts 1..min_count-1 -> null + suppressed; others rounded to the nearest ``round_to``
    (half up); 0 stays 0. ``round_to`` 1 turns rounding off."""
    def transform(counts: DataFrame) -> DataFrame:
        n = F.col("n_families")
        small = (n > 0) & (n < min_count)
        rounded = (F.floor(n / round_to + F.lit(0.5)) * round_to).cast("long") if round_to > 1 else n
        return counts.select(
            "snapshot_date", "district", "measure",
            F.when(small, F.lit(None).cast("long")).otherwise(rounded).alias("n_families"),
            small.alias("suppressed"))
    return transform


# --------------------------------------------------------------------------- the job
def measure_columns(family_indicators: DataFrame) -> list[str]:
    """Every boolean flag of the gold family table: indicators, headline problems, eligibility."""
    return [f.name for f in family_indicators.schema.fields
            if f.dataType.typeName() == "boolean" and f.name not in ("in_family", "has_dependent_child")]


def run(spark: SparkSession, env: EnvConfig, as_of: str | dt.date | None = None, out_csv: str | None = None,
        min_count: int = 5, round_to: int = 5) -> dict[str, Any]:
    """Build the export for ``as_of`` (default: the latest gold snapshot). Returns a summary."""
    if min_count < 1 or round_to < 1:
        raise PipelineError(f"--min-count and --round-to must be at least 1 (got {min_count}, {round_to})")
    fam_path = env.table("gold", "family_indicators")
    if not lake.exists(spark, fam_path):
        raise PipelineError(f"no gold table at {fam_path}", hint="run `thinkfamily run gold` first")
    fam = lake.read(spark, fam_path)
    if as_of is None:
        snapshot = fam.agg(F.max("snapshot_date")).first()[0]
        if snapshot is None:
            raise PipelineError(f"{fam_path} holds no snapshot", hint="run `thinkfamily run gold` first")
    else:
        try:
            snapshot = dt.date.fromisoformat(str(as_of))
        except ValueError:
            raise PipelineError(f"--as-of {as_of!r} is not a date", hint="use YYYY-MM-DD") from None
    fam = fam.where(F.col("snapshot_date") == F.lit(snapshot))
    if fam.limit(1).count() == 0:
        raise PipelineError(f"gold has no snapshot {snapshot}", hint="run `thinkfamily run gold --as-of` for it")

    members_path, addr_path = env.table("silver", "family_member"), env.table("silver", "person_address")
    if lake.exists(spark, members_path) and lake.exists(spark, addr_path):
        districts = family_districts(lake.read(spark, members_path), lake.read(spark, addr_path))
    else:
        log.warning("export: no silver person_address table; every family counts as district '%s'", UNKNOWN_DISTRICT)
        districts = spark.createDataFrame([], "family_id string, district string")
    measures = measure_columns(fam)
    located = (fam.join(districts, on="family_id", how="left")
               .withColumn("district", F.coalesce(F.col("district"), F.lit(UNKNOWN_DISTRICT))))
    out = (located.transform(district_counts(measures))
           .transform(disclosure_control(min_count, round_to))
           .select(*COLUMNS)
           .localCheckpoint())

    path = env.table(*TABLE)
    if lake.exists(spark, path):
        lake.overwrite(out, path, replace_where=f"snapshot_date = '{snapshot.isoformat()}'")
    else:
        lake.overwrite(out, path)
    rows = out.orderBy("district", "measure").toPandas()
    rows["n_families"] = rows["n_families"].astype("Int64")  # nulls (suppressed) must not turn counts into floats
    if out_csv:
        Path(out_csv).parent.mkdir(parents=True, exist_ok=True)
        rows.to_csv(out_csv, index=False)
    return {
        "snapshot": snapshot.isoformat(), "districts": int(rows["district"].nunique()), "measures": len(measures) + 1,
        "rows": len(rows), "suppressed": int(rows["suppressed"].sum()), "table": path, "csv": out_csv,
        "min_count": min_count, "round_to": round_to,
    }


def format_summary(s: dict[str, Any]) -> str:
    where = f"{s['table']}" + (f" and {s['csv']}" if s["csv"] else "")
    return (f"analyst export for {s['snapshot']}: {s['rows']} counts ({s['districts']} districts x {s['measures']} measures), "
            f"{s['suppressed']} suppressed (< {s['min_count']}), others rounded to {s['round_to']} -> {where}")


def main(argv: list[str] | None = None) -> int:
    """spark-submit jobs/export.py --env cluster [--as-of YYYY-MM-DD] [--csv PATH]"""
    parser = argparse.ArgumentParser(prog="export", description="analyst export with disclosure control")
    parser.add_argument("--env", default=None)
    parser.add_argument("--as-of", default=None)
    parser.add_argument("--csv", default=None)
    parser.add_argument("--min-count", type=int, default=5)
    parser.add_argument("--round-to", type=int, default=5)
    args = parser.parse_args(argv)
    return submit_main(args.env, lambda spark, env: format_summary(
        run(spark, env, args.as_of, args.csv, args.min_count, args.round_to)))


if __name__ == "__main__":
    sys.exit(main())

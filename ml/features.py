"""Point-in-time training frames for the risk models, from gold snapshots and silver events.

For each anchor date A of a model (conf/models/<name>.yaml):
- features are the person's gold indicators on the snapshot of the day before A
  (`ModelConfig.feature_snapshot_date`), which gold computed from events known by that day;
- the label is whether a cohort event (label event types + `when`) is dated in [A, A + window);
- people with a cohort event dated before A are already known and are left out
  (`exclude_prior_cohort`), as the synthetic city's generator does;
- the population rule (role, age at the snapshot) selects who is scored.

Protected attributes (sex, ethnicity group, area, age band) are built here too, in a separate
frame joined only for fairness evaluation; they never reach a model's feature matrix.
Every function is a pure DataFrame transform; ml.train and ml.score do the reads and writes.
"""
from __future__ import annotations

from datetime import date

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from ml.modelconf import ModelConfig

AGE_BANDS = ((0, 4, "0-4"), (5, 9, "5-9"), (10, 12, "10-12"), (13, 15, "13-15"), (16, 17, "16-17"),
             (18, 24, "18-24"), (25, 44, "25-44"), (45, 64, "45-64"), (65, 200, "65+"))
# First letter of an ethnicity code (ONS 2021 / DfE style: WBRI, MWBC, AIND, BCRB, OOTH...) -> group.
ETHNICITY_GROUPS = {"W": "White", "M": "Mixed", "A": "Asian", "B": "Black", "O": "Other", "C": "Other"}
KEY_COLUMNS = ["person_id", "family_id", "anchor_date", "snapshot_date", "split"]


def anchors_frame(spark: SparkSession, cfg: ModelConfig) -> DataFrame:
    """One row per anchor: anchor_date, snapshot_date (the day before), window_end, split (train/test)."""
    rows = []
    for split, days in (("train", cfg.anchors.train), ("test", cfg.anchors.test)):
        for a in days:
            rows.append((a, cfg.feature_snapshot_date(a), cfg.outcome_window(a)[1], split))
    return spark.createDataFrame(rows, "anchor_date date, snapshot_date date, window_end date, split string")


def scoring_anchor(spark: SparkSession, snapshot_date: date, cfg: ModelConfig) -> DataFrame:
    """The anchors frame for scoring now: features from `snapshot_date`, anchor the day after."""
    from datetime import timedelta

    anchor = snapshot_date + timedelta(days=1)
    return spark.createDataFrame([(anchor, snapshot_date, cfg.outcome_window(anchor)[1], "score")],
                                 "anchor_date date, snapshot_date date, window_end date, split string")


def label_events(events: DataFrame, person_link: DataFrame, cfg: ModelConfig) -> DataFrame:
    """(person_id, event_date) of every cohort-defining event, on our linked person ids."""
    cond = F.col("event_type").isin(*cfg.cohort.label_event_types)
    if cfg.cohort.when:
        cond = cond & F.coalesce(F.expr(cfg.cohort.when), F.lit(False))
    links = person_link.select("record_id", "person_id")
    return (events.filter(cond & F.col("event_date").isNotNull())
            .join(links, on="record_id", how="inner")
            .select("person_id", "event_date"))


def cohort_labels(labels: DataFrame, anchors: DataFrame) -> DataFrame:
    """(person_id, anchor_date, label, prior): a cohort event in [anchor, window_end) / before the anchor."""
    joined = labels.join(F.broadcast(anchors.select("anchor_date", "window_end")), how="cross")
    in_window = (F.col("event_date") >= F.col("anchor_date")) & (F.col("event_date") < F.col("window_end"))
    return joined.groupBy("person_id", "anchor_date").agg(
        F.bool_or(in_window).alias("label"),
        F.bool_or(F.col("event_date") < F.col("anchor_date")).alias("prior"),
    )


def in_population(cfg: ModelConfig) -> Column:
    """Role and age (whole years on the feature snapshot) as the config declares them."""
    p = cfg.population
    age_ok = F.col("age").between(p.age_min, p.age_max)
    if p.role == "child":
        role_ok = F.coalesce(F.col("is_child"), F.col("role") == "child", F.lit(False))
    elif p.role == "adult":
        role_ok = ~F.coalesce(F.col("is_child"), F.col("role") == "child", F.lit(False))
    else:
        role_ok = F.lit(True)
    return F.coalesce(age_ok & role_ok, F.lit(False))


def feature_columns(cfg: ModelConfig) -> list[Column]:
    """The model's features as doubles (flags 1/0, counts, age); null (not computed) -> 0."""
    return [F.coalesce(F.col(f).cast("double"), F.lit(0.0)).alias(f) for f in cfg.features]


def model_frame(person_indicators: DataFrame, labels: DataFrame, anchors: DataFrame, cfg: ModelConfig) -> DataFrame:
    """One row per person in the population per anchor: keys, features, label (0/1).

    Features are read from the snapshot the anchors frame names (the day before each anchor), so
    nothing dated on or after the anchor can reach them.
    """
    rows = person_indicators.join(F.broadcast(anchors), on="snapshot_date", how="inner").filter(in_population(cfg))
    labelled = rows.join(cohort_labels(labels, anchors), on=["person_id", "anchor_date"], how="left")
    if cfg.cohort.exclude_prior_cohort:
        labelled = labelled.filter(~F.coalesce(F.col("prior"), F.lit(False)))
    return labelled.select(
        "person_id", "family_id", "anchor_date", "snapshot_date", "split",
        *feature_columns(cfg),
        F.coalesce(F.col("label"), F.lit(False)).cast("int").alias("label"),
    )


# ------------------------------------------------------------------------ protected attributes

def age_band(age: Column) -> Column:
    out = F.lit(None).cast("string")
    for lo, hi, label in reversed(AGE_BANDS):
        out = F.when(age.between(lo, hi), F.lit(label)).otherwise(out)
    return out


def ethnicity_group(code: Column) -> Column:
    """'WBRI' / 'W' / 'White British' -> 'White'; unknown or not stated -> null (the '(missing)' group)."""
    first = F.upper(F.substring(F.trim(code), 1, 1))
    out = F.lit(None).cast("string")
    for letter, group in ETHNICITY_GROUPS.items():
        out = F.when(first == letter, F.lit(group)).otherwise(out)
    return out


def protected_attributes(person: DataFrame, records: DataFrame, person_link: DataFrame) -> DataFrame:
    """(person_id, sex, ethnicity_group, area) for fairness evaluation only.

    `records` is silver person-record rows (record_id, valid_date, postcode_district, ethnicity —
    missing columns are treated as unknown): ethnicity group is the person's most frequently
    recorded group, area their most recently recorded postcode district.
    """
    recs = records.select(
        "record_id",
        (F.col("valid_date") if "valid_date" in records.columns else F.lit(None).cast("date")).alias("valid_date"),
        (F.col("postcode_district") if "postcode_district" in records.columns else F.lit(None).cast("string")).alias("area"),
        ethnicity_group(F.col("ethnicity") if "ethnicity" in records.columns else F.lit(None).cast("string"))
        .alias("ethnicity_group"),
    ).join(person_link.select("record_id", "person_id"), on="record_id", how="inner")
    eth = (recs.filter(F.col("ethnicity_group").isNotNull())
           .groupBy("person_id", "ethnicity_group").agg(F.count(F.lit(1)).alias("n"))
           .withColumn("r", F.row_number().over(Window.partitionBy("person_id").orderBy(F.desc("n"), "ethnicity_group")))
           .filter(F.col("r") == 1).select("person_id", "ethnicity_group"))
    area = (recs.filter(F.col("area").isNotNull())
            .withColumn("r", F.row_number().over(
                Window.partitionBy("person_id").orderBy(F.desc_nulls_last("valid_date"), "area")))
            .filter(F.col("r") == 1).select("person_id", "area"))
    return (person.select("person_id", F.col("sex"))
            .join(eth, on="person_id", how="left")
            .join(area, on="person_id", how="left")
            .select("person_id", "sex", "ethnicity_group", "area"))


def with_protected(frame: DataFrame, protected: DataFrame) -> DataFrame:
    """Model rows plus the protected attributes (age band from the feature-snapshot age)."""
    out = frame.join(protected, on="person_id", how="left")
    age = F.col("age") if "age" in frame.columns else F.lit(None).cast("double")
    return out.select(*frame.columns, "sex", "ethnicity_group", "area", age_band(age).alias("age_band"))


# ------------------------------------------------------------------------------------- truth

def truth_id_map(record_links: DataFrame, person_link: DataFrame) -> DataFrame:
    """(person_id, true_person_id, linkage_exact): each of our persons -> the true person most of its
    records belong to, and whether linkage got that person exactly right.

    The generator's truth/record_links says which true person every (source, record_key, role)
    mention is; silver/person_link says which of our person_ids it was linked to. Majority vote,
    ties to the smallest true id. Used only to look up the generator's true probabilities.
    linkage_exact: all of our person's records are that true person's and all of the true person's
    linked records are in our person. Where it is false the true person is split or merged, so our
    person's label and features are not the true person's; oracle comparisons use exact rows only.
    """
    truth = record_links.select("source", "record_key", "role", F.col("person_id").cast("string").alias("true_person_id"))
    votes = (person_link.select("source", "record_key", "role", "person_id")
             .join(truth, on=["source", "record_key", "role"], how="inner")
             .groupBy("person_id", "true_person_id").agg(F.count(F.lit(1)).alias("n")))
    w = Window.partitionBy("person_id").orderBy(F.desc("n"), "true_person_id")
    ours = Window.partitionBy("person_id")
    theirs = Window.partitionBy("true_person_id")
    exact = (F.count(F.lit(1)).over(ours) == 1) & (F.count(F.lit(1)).over(theirs) == 1)
    return (votes.withColumn("r", F.row_number().over(w)).withColumn("linkage_exact", exact)
            .filter(F.col("r") == 1).select("person_id", "true_person_id", "linkage_exact"))


def true_probabilities(cohort_truth: DataFrame, id_map: DataFrame) -> DataFrame:
    """(person_id, anchor_date, true_prob, permitted_prob, linkage_exact) from truth/cohort_<model>.parquet
    (true ids, period_start). permitted_prob = the generator's probability with protected attributes held
    at their mean (null when an older truth folder lacks it); linkage_exact from `truth_id_map`."""
    permitted = (F.col("permitted_prob") if "permitted_prob" in cohort_truth.columns else F.lit(None)).cast("double")
    t = cohort_truth.select(F.col("person_id").cast("string").alias("true_person_id"),
                            F.to_date("period_start").alias("anchor_date"), F.col("true_prob").cast("double"),
                            permitted.alias("permitted_prob"))
    return id_map.join(t, on="true_person_id", how="inner").select("person_id", "anchor_date", "true_prob",
                                                                   "permitted_prob", "linkage_exact")

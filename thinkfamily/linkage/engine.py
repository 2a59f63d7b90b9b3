"""Run the Splink model on DuckDB or Spark with the same settings.

The job hands over prepared records (and the deterministic edges) as Spark DataFrames; this
module trains or loads the model, measures blocking, predicts, clusters deterministic and
probabilistic edges together with Splink's connected components, and hands back Spark
DataFrames. Nothing here reads or writes the lake.
"""
from __future__ import annotations

import logging
import math
import os
import shutil
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from thinkfamily.errors import PipelineError
from thinkfamily.linkage.config import LinkageConfig
from thinkfamily.linkage.settings import apply_trained, settings_dict

log = logging.getLogger(__name__)

Backend = Literal["duckdb", "spark"]

EDGE_SCHEMA = "unique_id_l string, unique_id_r string, match_probability double, identifier string"


@dataclass
class LinkOutput:
    """What one linkage run produced (Spark frames plus material for the report)."""

    clusters: DataFrame  # unique_id, cluster_id
    edges: DataFrame  # unique_id_l, unique_id_r, match_probability, identifier (null = probabilistic)
    model: dict[str, Any]
    trained: bool
    blocking_counts: list[dict[str, Any]]
    n_pairs_scored: int
    timings: dict[str, float] = field(default_factory=dict)
    charts: dict[str, str] = field(default_factory=dict)  # name -> standalone HTML


def _duckdb_connection(duckdb_memory: tuple[str, str] | None):
    """``duckdb_memory`` = (memory_limit, temp_directory): DuckDB shares the machine with the Spark
    driver, so it is capped and spills to disk rather than growing to its default 80% of RAM."""
    import duckdb

    con = duckdb.connect(":memory:")
    if duckdb_memory is not None:
        limit, tmp = duckdb_memory
        Path(tmp).mkdir(parents=True, exist_ok=True)  # DuckDB creates one level only, and only when it spills
        con.execute(f"SET memory_limit = '{limit}'")
        con.execute(f"SET temp_directory = {_sql_text(tmp)}")
        con.execute("SET preserve_insertion_order = false")  # lets large results stream and spill
    return con


def _db_api(backend: Backend, spark: SparkSession, duckdb_memory: tuple[str, str] | None = None):
    if backend == "duckdb":
        from splink import DuckDBAPI

        return DuckDBAPI(connection=_duckdb_connection(duckdb_memory))
    from splink import SparkAPI

    # Splink's connected components iterates; "persist" keeps every iteration's plan in the next
    # one's lineage, and analysing that plan exhausted a 3 GiB driver on 40 people. Checkpointing
    # cuts the lineage; it needs a checkpoint directory, which the link job sets.
    method = "checkpoint" if spark.sparkContext.getCheckpointDir() else "persist"
    if method == "persist":
        log.warning("no Spark checkpoint directory set: Splink falls back to persist (plans grow per iteration)")
    return SparkAPI(spark_session=spark, break_lineage_method=method)


class Handover:
    """Moves frames between Spark and the Splink backend.

    DuckDB on a local Spark with a local spill folder: through parquet files in that folder, so
    neither process holds the other's copy (handing 2M records over as Arrow collected them through
    the Spark driver into the Python process, next to DuckDB's own copy). A cluster's executors
    cannot write the driver's disk, so there (or with no folder) frames go over as Arrow. The Spark
    backend needs no handover: Splink works on the DataFrames themselves."""

    def __init__(self, spark: SparkSession, backend: Backend, db_api, folder: str | None):
        local = spark.sparkContext.master.startswith("local") and folder is not None and "://" not in folder
        self.spark, self.db_api = spark, db_api
        self.folder = Path(folder) / f"handover-{os.getpid()}-{uuid.uuid4().hex[:8]}" if backend == "duckdb" and local else None
        self.via = "parquet" if self.folder else ("arrow" if backend == "duckdb" else "spark")
        if self.folder:
            _remove_orphans(Path(folder))

    def to_backend(self, df: DataFrame, name: str):
        if self.via == "parquet":
            path = self.folder / name
            df.write.parquet(str(path))
            self.db_api.duckdb_con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet({_sql_text(f'{path}/*.parquet')})")
            return self.db_api.register(name, table_name=name)
        if self.via == "arrow":
            return self.db_api.register(df.toArrow(), table_name=name)
        # a temp view outlives the run: a second link run in one session (an erasure's relink, a
        # full run then an incremental one) found the last run's and Splink refused to register
        df.sparkSession.catalog.dropTempView(name)
        return self.db_api.register(df, table_name=name)

    def to_spark(self, sdf) -> DataFrame | None:
        """None for an empty result. Read back lazily: the caller materialises it (localCheckpoint)
        before ``close`` removes the files."""
        if self.via == "parquet":
            path = self.folder / f"out_{sdf.physical_name}.parquet"
            self.db_api.duckdb_con.execute(f"COPY (SELECT * FROM {sdf.physical_name}) TO {_sql_text(path)} (FORMAT parquet)")
            df = self.spark.read.parquet(str(path))
            return df if not df.isEmpty() else None
        if self.via == "arrow":
            table = sdf.as_pyarrow_table()
            return self.spark.createDataFrame(table) if table.num_rows else None
        return sdf.as_spark_dataframe()

    def close(self) -> None:
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


def _sql_text(value: object) -> str:
    """A DuckDB string literal (a lake path may hold a quote)."""
    return "'" + str(value).replace("'", "''") + "'"


def _remove_orphans(spill: Path) -> None:
    """Handover folders of processes that no longer run (a killed link run leaves its files)."""
    for d in spill.glob("handover-*-*"):
        try:
            os.kill(int(d.name.split("-")[1]), 0)
        except ValueError:
            continue  # not ours
        except ProcessLookupError:
            shutil.rmtree(d, ignore_errors=True)
        except PermissionError:
            pass  # alive, another user's


def measure_blocking(linker, cfg: LinkageConfig) -> list[dict[str, Any]]:
    """Comparisons each blocking rule adds (Splink's blocking analysis); refuse oversized rules."""
    records = linker.blocking_analysis.count_comparisons_from_blocking_rules(
        record_sample_proportion=cfg.blocking.analysis_sample
    )
    out = []
    for rule, rec in zip(cfg.blocking.rules, records):
        row = {
            "rule": rule.name,
            "marginal_comparisons": int(rec["marginal_comparison_count"]),
            "cumulative_comparisons": int(rec["cumulative_comparison_count"]),
            "is_estimate": bool(rec["is_estimate"]),
        }
        log.info("blocking rule %-22s adds %12d comparisons (cumulative %d)", rule.name,
                 row["marginal_comparisons"], row["cumulative_comparisons"])
        out.append(row)
        if row["marginal_comparisons"] > cfg.blocking.max_comparisons_per_rule:
            raise PipelineError(
                f"conf/linkage.yaml: blocking.rules[{rule.name}]: {row['marginal_comparisons']:,} comparisons "
                f"exceeds max_comparisons_per_rule {cfg.blocking.max_comparisons_per_rule:,}",
                hint="add a column to the rule so no frequent value forms a block on its own",
            )
    return out


# EM can drive a level's m to exactly 0.0 when no likely match falls in it (common for rare
# levels); Splink 5 then refuses the value, and a zero m would be a veto anyway. We floor m at
# a rate no smaller than one keying error in 100,000 matches — a level is evidence, never a veto.
EM_M_FLOOR = 1e-5


@contextmanager
def _m_floor(floor: float = EM_M_FLOOR):
    import splink.internals.expectation_maximisation as em

    original = em.compute_proportions_for_new_parameters

    def floored(df_params):
        records = original(df_params)
        for r in records:
            if r["output_column_name"] != "_probability_two_random_records_match":
                m = r.get("m_probability")
                if isinstance(m, (int, float)) and m < floor:
                    r["m_probability"] = floor
        return records

    em.compute_proportions_for_new_parameters = floored
    try:
        yield
    finally:
        em.compute_proportions_for_new_parameters = original


def em_rule(linker, rule, table: str | None, max_pairs: int):
    """The EM blocking rule, restricted to a random subset of records when the rule alone pairs more
    than ``max_pairs``: records with em_bucket < b on both sides, b chosen so pairs ~ max_pairs."""
    from splink.internals.blocking_rule_creator_utils import to_blocking_rule_creator

    from thinkfamily.linkage.prepare import EM_BUCKETS

    if rule.columns is None or table is None:
        return rule.splink()
    cols = rule.columns
    sql = (f"select coalesce(sum(n * (n - 1) / 2), 0) as pairs from (select count(*) as n from {table} where "
           + " and ".join(f"{c} is not null" for c in cols) + f" group by {', '.join(cols)}) as blocks")
    pairs = float(linker.misc.query_sql(sql, output_type="pandas")["pairs"][0])
    if pairs <= max_pairs:
        return rule.splink()
    buckets = max(1, math.ceil(EM_BUCKETS * math.sqrt(max_pairs / pairs)))
    log.info("EM rule %s pairs %d records' comparisons: training on %.1f%% of records (~%d pairs)",
             rule.name, int(pairs), 100 * buckets / EM_BUCKETS, int(pairs * (buckets / EM_BUCKETS) ** 2))
    cond = " and ".join(f"l.{c} = r.{c}" for c in cols)
    return to_blocking_rule_creator(f"{cond} and l.em_bucket < {buckets} and r.em_bucket < {buckets}")


def train(linker, cfg: LinkageConfig, table: str | None = None) -> None:
    """u by random sampling, lambda from near-certain rules, m by EM over the configured blocks
    (sampled when a block is huge; ``table`` = the registered records, for counting)."""
    t = cfg.training
    linker.training.estimate_probability_two_random_records_match(
        [r.splink() for r in t.lambda_rules], recall=t.lambda_recall
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=t.u_max_pairs, seed=t.seed)
    with _m_floor():
        for rule in t.em_rules:
            linker.training.estimate_parameters_using_expectation_maximisation(
                em_rule(linker, rule, table, t.em_max_pairs))


def link_records(
    spark: SparkSession,
    records: DataFrame,
    det_edges: DataFrame,
    cfg: LinkageConfig,
    backend: Backend = "duckdb",
    trained_model: dict[str, Any] | None = None,
    with_charts: bool = False,
    duckdb_memory: tuple[str, str] | None = None,
    new_only: bool = False,
) -> LinkOutput:
    """Score and cluster ``records`` (prepare_records output); ``det_edges`` join unconditionally.

    ``new_only`` (an incremental run, with a trained model): ``records`` carry the boolean
    incremental.NEW_FLAG; only pairs with a new side are scored, nothing is clustered (``clusters``
    is None) and ``edges`` are the new links for the job to place onto the previous people."""
    from thinkfamily.linkage.incremental import new_pairs_only

    from splink import Linker
    from splink.clustering import cluster_pairwise_predictions_at_threshold

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    db_api = _db_api(backend, spark, duckdb_memory)
    handover = Handover(spark, backend, db_api, duckdb_memory[1] if duckdb_memory else None)
    try:
        dialect = "duckdb" if backend == "duckdb" else "spark"
        settings = settings_dict(cfg, dialect)
        if trained_model is not None:
            settings = apply_trained(settings, trained_model)
        if new_only:
            if trained_model is None:
                raise ValueError("new_only scoring needs a trained model")
            settings = new_pairs_only(settings)
        input_sdf = handover.to_backend(records, "tf_linkage_records")
        linker = Linker(input_sdf, settings, log_level=logging.WARNING)
        timings["register_s"] = time.perf_counter() - t0

        t1 = time.perf_counter()
        # an incremental run's rules are the full run's, restricted: their sizes were measured then
        blocking = [] if new_only else measure_blocking(linker, cfg)
        timings["blocking_analysis_s"] = time.perf_counter() - t1

        t1 = time.perf_counter()
        if trained_model is None:
            train(linker, cfg, input_sdf.physical_name)
        timings["training_s"] = time.perf_counter() - t1
        model = linker.misc.save_model_to_json()

        t1 = time.perf_counter()
        predictions = linker.inference.predict(threshold_match_probability=cfg.predict_threshold, warning_mode="never")
        n_scored = int(linker.misc.query_sql(f"select count(*) as n from {predictions.physical_name}", output_type="pandas")["n"][0])
        timings["predict_s"] = time.perf_counter() - t1

        t1 = time.perf_counter()
        thr = cfg.link_threshold
        prob_edges_sql = (
            f"select unique_id_l, unique_id_r, match_probability, cast(null as string) as identifier "
            f"from {predictions.physical_name} where match_probability >= {thr}"
        ) if backend == "spark" else (
            f"select unique_id_l, unique_id_r, match_probability, cast(null as varchar) as identifier "
            f"from {predictions.physical_name} where match_probability >= {thr}"
        )
        prob_edges = linker.misc.query_sql(prob_edges_sql, output_type="splink_df")
        det = det_edges.select("unique_id_l", "unique_id_r", F.lit(1.0).alias("match_probability"), "identifier")
        det_sdf = handover.to_backend(det, "tf_linkage_det_edges")
        all_edges = db_api.sql_pipeline_to_splink_dataframe(_union_pipeline(prob_edges, det_sdf))
        clusters_df = None  # new_only: the job places the new edges onto the previous people itself
        if not new_only:
            clusters = cluster_pairwise_predictions_at_threshold(
                input_sdf, all_edges, db_api=db_api, node_id_column_name="unique_id",
                edge_id_column_name_left="unique_id_l", edge_id_column_name_right="unique_id_r",
                threshold_match_probability=None,
            )
            if cfg.mutual_best.threshold is not None:
                clusters, all_edges, timings["mutual_best_merges"] = _mutual_best(
                    db_api, clusters, all_edges, predictions, cfg.mutual_best.threshold, cfg.mutual_best.rounds)
            clusters_df = handover.to_spark(clusters).select("unique_id", "cluster_id")
        edges_df = handover.to_spark(all_edges)
        if edges_df is None:
            edges_df = spark.createDataFrame([], EDGE_SCHEMA)
        # materialise before the backend's tables go away (DuckDB connection closed; Spark temp views
        # dropped and uncached) and so later joins start from a short plan
        clusters_df = clusters_df.localCheckpoint() if clusters_df is not None else None
        edges_df = edges_df.localCheckpoint()
        timings["cluster_s"] = time.perf_counter() - t1

        charts = _charts(linker, predictions) if with_charts else {}
        if backend == "spark":
            linker.table_management.delete_tables_created_by_splink_from_db()
        timings["total_s"] = time.perf_counter() - t0
        log.info("linkage (%s%s, handed over as %s): %d pairs scored, timings %s", backend,
                 ", new records only" if new_only else "", handover.via, n_scored, {k: round(v, 1) for k, v in timings.items()})
        return LinkOutput(clusters_df, edges_df, model, trained_model is None, blocking, n_scored, timings, charts)
    finally:
        handover.close()


# One round of mutual-best merges (MutualBestSettings), in SQL both DuckDB and Spark run: the best
# weak pair between every two clusters, each cluster's best partner, merges where that is mutual.
_MUTUAL_BEST_PAIRS = """
select p.unique_id_l, p.unique_id_r, p.match_probability,
       least(l.cluster_id, r.cluster_id) as a, greatest(l.cluster_id, r.cluster_id) as b
from {pred} p join {clusters} l on p.unique_id_l = l.unique_id join {clusters} r on p.unique_id_r = r.unique_id
where p.match_probability >= {low} and l.cluster_id <> r.cluster_id
"""
_MUTUAL_BEST = """
with weak as (
    select unique_id_l, unique_id_r, match_probability as p, a, b,
           row_number() over (partition by a, b order by match_probability desc, unique_id_l, unique_id_r) as rn
    from {pairs}),
best_pair as (select unique_id_l, unique_id_r, p, a, b from weak where rn = 1),
sides as (select a as c, b as partner, p from best_pair union all select b as c, a as partner, p from best_pair),
ranked as (select c, partner, row_number() over (partition by c order by p desc, partner) as rn from sides),
best as (select c, partner from ranked where rn = 1),
mutual as (select x.c as a, x.partner as b from best x join best y on x.partner = y.c and y.partner = x.c
           where x.c < x.partner)
select bp.unique_id_l, bp.unique_id_r, bp.p as match_probability, m.a, m.b
from mutual m join best_pair bp on bp.a = m.a and bp.b = m.b
"""


def _mutual_best(db_api, clusters, all_edges, predictions, low: float, rounds: int):
    """(clusters, edges + the weak edges that merged clusters, merges made) after ``rounds`` rounds."""
    merges = 0
    for i in range(rounds):
        pairs = db_api.sql_pipeline_to_splink_dataframe(_pipeline(
            [predictions, clusters], _MUTUAL_BEST_PAIRS.format(pred=predictions.physical_name,
                                                             clusters=clusters.physical_name, low=low),
            f"__tf_mutual_best_pairs_{i}"))
        chosen = db_api.sql_pipeline_to_splink_dataframe(_pipeline(
            [pairs], _MUTUAL_BEST.format(pairs=pairs.physical_name), f"__tf_mutual_best_{i}"))
        n = int(db_api.sql_pipeline_to_splink_dataframe(_pipeline(
            [chosen], f"select count(*) as n from {chosen.physical_name}", f"__tf_mutual_best_n_{i}"))
            .as_pandas_dataframe()["n"][0])
        if n == 0:
            break
        merges += n
        clusters = db_api.sql_pipeline_to_splink_dataframe(_pipeline(
            [clusters, chosen],
            f"select c.unique_id, coalesce(m.a, c.cluster_id) as cluster_id from {clusters.physical_name} c "
            f"left join (select distinct a, b from {chosen.physical_name}) m on c.cluster_id = m.b",
            f"__tf_mutual_best_clusters_{i}"))
        all_edges = db_api.sql_pipeline_to_splink_dataframe(_pipeline(
            [all_edges, chosen],
            f"select unique_id_l, unique_id_r, match_probability, identifier from {all_edges.physical_name} "
            f"union all select unique_id_l, unique_id_r, match_probability, cast(null as {_string(db_api)}) "
            f"as identifier from {chosen.physical_name}",
            f"__tf_linkage_edges_mb_{i}"))
    log.info("linkage: %d mutual-best merge(s) at >= %s", merges, low)
    return clusters, all_edges, float(merges)


def _string(db_api) -> str:
    return "string" if db_api.sql_dialect.sql_dialect_str == "spark" else "varchar"


def _pipeline(inputs, sql: str, name: str):
    from splink.internals.pipeline import CTEPipeline

    pipeline = CTEPipeline(inputs)
    pipeline.enqueue_sql(sql, name)
    return pipeline


def _union_pipeline(prob_edges, det_sdf):
    from splink.internals.pipeline import CTEPipeline

    pipeline = CTEPipeline([prob_edges, det_sdf])
    cols = "unique_id_l, unique_id_r, match_probability, identifier"
    pipeline.enqueue_sql(
        f"select {cols} from {prob_edges.templated_name} union all select {cols} from {det_sdf.templated_name}",
        "__tf_linkage_all_edges",
    )
    return pipeline


def _charts(linker, predictions) -> dict[str, str]:
    """Model charts as standalone HTML. Waterfalls carry match weights only (no record values)."""
    charts: dict[str, str] = {}
    makers = {
        "match_weights": lambda: linker.visualisations.match_weights_chart(),
        "m_u_parameters": lambda: linker.visualisations.m_u_parameters_chart(),
        "match_weights_histogram": lambda: linker.visualisations.match_weights_histogram(predictions),
        "waterfall_pseudonymised": lambda: linker.visualisations.waterfall_chart(
            predictions.as_record_list(limit=10), remove_sensitive_data=True
        ),
    }
    for name, make in makers.items():
        try:
            charts[name] = make().to_html(inline=True)
        except Exception as exc:  # a chart must never fail the linkage run
            log.warning("linkage chart %s not produced: %s", name, type(exc).__name__)
    return charts


def connected_components(spark: SparkSession, nodes: DataFrame, edges: DataFrame) -> DataFrame:
    """(node) + (node_l, node_r) -> (node, cluster_id), solved by Splink's connected components
    in DuckDB (the family graph is small: people with dependent children and their edges)."""
    import duckdb
    from splink import DuckDBAPI
    from splink.clustering import cluster_pairwise_predictions_at_threshold

    db_api = DuckDBAPI(connection=duckdb.connect(":memory:"))
    node_tbl = nodes.select(F.col("node").alias("unique_id")).toArrow()
    if node_tbl.num_rows == 0:
        return spark.createDataFrame([], "node string, cluster_id string")
    edge_tbl = edges.select(F.col("node_l").alias("unique_id_l"), F.col("node_r").alias("unique_id_r")).toArrow()
    nodes_sdf = db_api.register(node_tbl, table_name="tf_nodes")
    edges_sdf = db_api.register(edge_tbl, table_name="tf_edges")
    cc = cluster_pairwise_predictions_at_threshold(nodes_sdf, edges_sdf, db_api=db_api, node_id_column_name="unique_id")
    out = spark.createDataFrame(cc.as_pyarrow_table())
    return out.select(F.col("unique_id").alias("node"), "cluster_id").localCheckpoint()

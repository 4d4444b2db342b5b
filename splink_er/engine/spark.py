"""Splink on Spark (`engine.kind: spark`): the steps whose cost grows with the number of pairs.

Spark runs Splink's u sampling, EM and prediction, over inputs it reads from Parquet, and writes the
prediction to Parquet. splink_er's own per-pair steps (sampling, training from labels, routing, decisions,
audit, clustering of the final matches) read that Parquet with DuckDB, as they read Splink's DuckDB prediction,
so both engines share one code path after predict and give the same decisions for the same model.

The model is kept in DuckDB SQL (what model.json holds, what explain and the report use). For Spark it is
translated level by level: Splink's library comparisons are rebuilt in Spark SQL by Splink itself, custom SQL
(settings' custom levels, PersonName/Office/Party, SQL blocking rules) is transpiled with sqlglot, and m/u values
and the prior are copied across by position (the two dicts have the same comparisons and levels, in order).
"""

from __future__ import annotations

import copy
import re
import shutil
import uuid
from pathlib import Path

import sqlglot
from sqlglot import exp

from ..errors import DependencyMissing, InputError
from ..model import blocking_rule, make_linker, splink_settings_dict
from ..settings import Settings
from ..sql import sql_literal
from ..training import bootstrap, stable_parameters
from .base import Backend, Prediction
from .reweigh import reweigh

UDF_JAR = Path(__file__).parents[1] / "spark_udfs" / "splink_er_udfs.jar"
# Jaro and Jaro-Winkler as DuckDB computes them (spark_udfs/src): Splink's jar differs on ~0.7% of name pairs and
# Spark 4's built-in jaro_winkler_similarity on ~10% of them, enough to move pairs between levels and decisions
# between engines. Every spelling, from sqlglot (DuckDB SQL) or from Splink's Spark comparisons (its jar's
# names), is pointed at these; their own names, because Spark resolves built-in functions first.
_UDFS = {"splink_er_jaro_winkler": "splink_er.JaroWinklerSimilarity", "splink_er_jaro": "splink_er.JaroSimilarity"}
_RENAMES = {
    "JAROWINKLER_SIMILARITY": "splink_er_jaro_winkler",
    "JARO_WINKLER_SIMILARITY": "splink_er_jaro_winkler",
    "JARO_WINKLER": "splink_er_jaro_winkler",
    "JARO_SIMILARITY": "splink_er_jaro",
    "JARO_SIM": "splink_er_jaro",
}
_RENAME_RE = re.compile(r"\b(" + "|".join(_RENAMES) + r")\s*\(", re.IGNORECASE)


def _rename_udfs(sql: str) -> str:
    return _RENAME_RE.sub(lambda m: _RENAMES[m.group(1).upper()] + "(", sql)


def _as_bytes(arg: exp.Expression) -> exp.Expression:
    # Each UTF-8 byte becomes one Latin-1 character, so Spark's edit distances count bytes as DuckDB's do.
    return exp.func("decode", exp.func("encode", arg, exp.Literal.string("UTF-8")), exp.Literal.string("ISO-8859-1"))


def _bytewise_edit_distances(spark_sql: str) -> str:
    """Levenshtein and Damerau-Levenshtein over UTF-8 bytes, as DuckDB computes them (Spark counts characters:
    'José' and 'Jose' are 1 apart on Spark, 2 on DuckDB)."""
    if spark_sql.strip().upper() == "ELSE" or "levenshtein" not in spark_sql.lower():
        return spark_sql

    def wrap(node):
        if isinstance(node, exp.Levenshtein):
            node.set("this", _as_bytes(node.this))
            node.set("expression", _as_bytes(node.expression))
        elif isinstance(node, exp.Anonymous) and node.name.lower() == "damerau_levenshtein":
            node.set("expressions", [_as_bytes(a) for a in node.expressions])
        return node

    return sqlglot.parse_one(spark_sql, read="spark").transform(wrap, copy=False).sql(dialect="spark")


def spark_condition(spark_sql: str) -> str:
    """Splink-written or transpiled Spark SQL with DuckDB's string-similarity semantics."""
    return _bytewise_edit_distances(_rename_udfs(spark_sql))


def to_spark_sql(sql: str) -> str:
    """A DuckDB SQL condition or expression in Spark SQL ('ELSE' stays 'ELSE')."""
    if sql.strip().upper() == "ELSE":
        return sql
    try:
        out = sqlglot.transpile(sql, read="duckdb", write="spark")[0]
    except sqlglot.errors.ParseError as e:
        raise InputError(f"Cannot translate SQL to Spark: {sql!r}: {e}") from None
    return spark_condition(out)


# strftime (DuckDB) to Java DateTimeFormatter (Spark) for the date formats settings pass to Splink's comparisons.
_DATE_CODES = {
    "%Y": "yyyy",
    "%y": "yy",
    "%m": "MM",
    "%d": "dd",
    "%H": "HH",
    "%M": "mm",
    "%S": "ss",
    "%b": "MMM",
    "%B": "MMMM",
    "%j": "DDD",
    "%%": "%",
}


def java_date_format(strftime: str) -> str:
    """'%Y-%m-%d' -> 'yyyy-MM-dd'. Literal letters are quoted, as Java patterns need."""
    out, i = [], 0
    while i < len(strftime):
        code = strftime[i : i + 2]
        if code in _DATE_CODES:
            out.append(_DATE_CODES[code])
            i += 2
        elif code.startswith("%"):
            raise InputError(
                f"Date format {strftime!r}: {code} has no Spark equivalent here; use {', '.join(sorted(_DATE_CODES))}."
            )
        else:
            ch = strftime[i]
            out.append(f"'{ch}'" if ch.isalpha() else ch)
            i += 1
    return "".join(out)


def spark_comparison_args(args: dict) -> dict:
    """Library comparison arguments for Spark: DuckDB date formats in Java's notation."""
    return {
        k: java_date_format(v) if k in ("datetime_format", "date_format") and isinstance(v, str) else v
        for k, v in args.items()
    }


def spark_blocking_rule(rule):
    """A settings blocking rule for a Spark linker: column lists are dialect-free, SQL is transpiled."""
    return blocking_rule(rule if isinstance(rule, list) else to_spark_sql(rule))


def spark_model(settings: Settings, duckdb_model: dict) -> dict:
    """The Spark-SQL twin of a DuckDB model: same comparisons and levels, same m/u and prior."""
    out = splink_settings_dict(settings, dialect="spark", translate=to_spark_sql, translate_args=spark_comparison_args)
    for comparison in out["comparisons"]:  # Splink's own Spark SQL names its jar's functions
        for level in comparison["comparison_levels"]:
            level["sql_condition"] = spark_condition(level["sql_condition"])
    return copy_parameters(duckdb_model, out)


def copy_parameters(source: dict, target: dict) -> dict:
    """m, u and the prior of `source` onto `target` (a copy), level by level; the SQL of `target` is kept."""
    out = copy.deepcopy(target)
    out["probability_two_random_records_match"] = source["probability_two_random_records_match"]
    for cs, ct in zip(source["comparisons"], out["comparisons"], strict=True):
        for ls, lt in zip(cs["comparison_levels"], ct["comparison_levels"], strict=True):
            for k in ("m_probability", "u_probability"):
                if k in ls:
                    lt[k] = ls[k]
                else:
                    lt.pop(k, None)
    return out


def require_pyspark() -> None:
    """DependencyMissing, saying how to install it, when pyspark is not there."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise DependencyMissing(
            "engine.kind is spark but pyspark is not installed: pip install 'splink-er[spark]' "
            "(and Java 17), or set engine.kind: duckdb."
        ) from None


def make_session(settings: Settings):
    """A local SparkSession as `engine.spark` configures it, with Splink's similarity jar (jaro_winkler etc.)."""
    require_pyspark()
    from pyspark.sql import SparkSession
    from splink.backends.spark import similarity_jar_location

    s = settings.engine.spark
    builder = (
        SparkSession.builder.master(s.master)
        .appName(f"splink_er-{settings.name}")
        .config("spark.jars", similarity_jar_location())
        .config("spark.driver.memory", s.driver_memory)
        .config("spark.sql.shuffle.partitions", str(s.shuffle_partitions))
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")  # its stage bars would garble the run's own
    )
    for k, v in s.config.items():
        builder = builder.config(k, str(v))
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")  # Spark's INFO/WARN lines would bury the run's own progress
    return session


def register_udfs(spark) -> None:
    """DuckDB's Jaro and Jaro-Winkler as Spark SQL functions (works on a running session, e.g. Databricks')."""
    from pyspark.sql.types import DoubleType

    spark.sql(f"ADD JAR '{UDF_JAR}'")
    for name, java_class in _UDFS.items():
        spark.udf.registerJavaFunction(name, java_class, DoubleType())


class SparkBackend(Backend):
    """One job's Spark side: the inputs registered with Splink's SparkAPI, bootstrap and predict."""

    name = "spark"

    def __init__(self, session, spark=None) -> None:
        require_pyspark()
        from splink.backends.spark import SparkAPI

        super().__init__(session)
        settings, con = session.settings, session.con
        self.work = settings.materialisation_path / "spark"
        self.spark = spark if spark is not None else make_session(settings)
        self.spark.sparkContext.setCheckpointDir(str(self.work / "checkpoints"))
        register_udfs(self.spark)
        self.db = SparkAPI(
            spark_session=self.spark,
            break_lineage_method="parquet",
            num_partitions_on_repartition=settings.engine.spark.shuffle_partitions,
        )
        self.sdfs = []
        # A Spark session outlives a job (a notebook's, a test run's): each job's inputs get their own table name,
        # or the next job over a source of the same name finds the last one's table and Splink refuses it.
        job_tag = uuid.uuid4().hex[:8]
        # Inputs go over as Parquet written by DuckDB: no pandas round trip, types kept.
        for name, table in session.loaded.tables.items():
            path = self.work / "inputs" / f"{name}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            con.execute(f"COPY {table} TO {sql_literal(path)} (FORMAT parquet)")
            frame = self.spark.read.parquet(str(path))
            self.sdfs.append(self.db.register(frame, table_name=f"{name}_{job_tag}", dataset_display_name=name))
        self._predictions = 0

    def bootstrap(self, untrained_duckdb_model: dict) -> dict:
        """The unsupervised recipe run by Splink on Spark; returned as a DuckDB-SQL model."""
        trained = bootstrap(
            self.sdfs, self.settings, spark_model(self.settings, untrained_duckdb_model), rule=spark_blocking_rule
        )
        return stable_parameters(copy_parameters(trained, untrained_duckdb_model))

    def predict(self, duckdb_model: dict, previous: Prediction | None = None) -> Prediction:
        """Score every blocked pair on Spark (re-weighing the previous prediction's comparison vectors when they
        serve, engine/reweigh.py); the prediction is written to a fresh Parquet directory."""
        model = spark_model(self.settings, duckdb_model)
        if self.can_reweigh(duckdb_model, previous):
            vectors = self.db.register(self.spark.read.parquet(str(previous.handle)))
            pipeline = reweigh(self.sdfs, vectors, spark_model(self.settings, previous.model), model)
            pred = self.db.sql_pipeline_to_splink_dataframe(pipeline)
        else:
            pred = make_linker(self.sdfs, model).inference.predict()
        self._predictions += 1
        out = self.work / "predictions" / f"p{self._predictions}"
        pred.as_spark_dataframe().write.mode("overwrite").parquet(str(out))
        pred.drop_table_from_database_and_remove_from_cache()
        return Prediction(f"read_parquet({sql_literal(str(out) + '/*.parquet')})", out, copy.deepcopy(duckdb_model))

    def drop(self, prediction: Prediction) -> None:
        shutil.rmtree(prediction.handle, ignore_errors=True)

    def cleanup(self) -> None:
        shutil.rmtree(self.settings.materialisation_path, ignore_errors=True)

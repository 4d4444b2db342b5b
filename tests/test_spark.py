"""engine.kind: spark. Spark in local mode; skipped where pyspark or Java is missing (CI installs both).

The claim under test: the same settings and data give the same decisions on Spark as on DuckDB. That needs
every similarity function to return DuckDB's exact numbers on Spark, and u estimated from every pair (Splink
samples u in chunks chosen by each engine's own hash function otherwise).
"""

import random
import shutil

import duckdb
import pandas as pd
import pytest
from conftest import REPO, rows_differing

import splink_er
from benchmarks.spark_vs_duckdb import EXACT_U, run_both
from splink_er.decision_log import compare_decisions
from splink_er.engine import spark as spark_backend
from splink_er.settings import load_settings

pytestmark = [
    pytest.mark.spark,
    pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs Java"),
]
pyspark = pytest.importorskip("pyspark")
# Test-sized jobs on 2 cores: 2 shuffle partitions instead of 8 (each partition is a task per stage).
SMALL = ["engine.spark.shuffle_partitions=2"]

# Every pair is used for u on both engines (see the module docstring), so the models are the same.


@pytest.fixture(scope="module")
def spark():
    """One local session for the module, started as splink_er starts one (Splink's jar, few partitions)."""
    session = spark_backend.make_session(load_settings(splink_er.demo_settings_path(), SMALL))
    yield session
    session.stop()


def _string_pairs() -> pd.DataFrame:
    names = pd.read_csv(splink_er.demo_settings_path().parent / "fake_1000.csv", dtype=str)
    words = sorted(set(names["first_name"].dropna()) | set(names["surname"].dropna()))[:150]
    rows = [(a, b) for a in words for b in words if a < b]
    rng = random.Random(7)
    alphabet = "aabbeé01 -'üß"  # repeated letters, accents (multi-byte in UTF-8), digits, punctuation
    for _ in range(5000):
        rows.append(tuple("".join(rng.choices(alphabet, k=rng.randint(0, 9))) for _ in range(2)))
    rows += [("", ""), ("", "a"), ("0", "00"), ("MARTHA", "MARHTA"), ("José", "Jose"), ("Alfie", "Amelia")]
    return pd.DataFrame(rows, columns=["a", "b"]).drop_duplicates(ignore_index=True)


def test_string_similarities_on_spark_are_duckdbs_to_the_last_bit(spark):
    """Jaro, Jaro-Winkler, Levenshtein and Damerau-Levenshtein as the Spark backend writes them give DuckDB's
    values exactly: names, random strings with accents, empty strings. (Splink's jar and Spark 4's built-in
    jaro_winkler_similarity do not: Alfie/Amelia is 0.697 there and 0.739 on DuckDB.)"""
    pairs = _string_pairs()
    exprs = {
        "jw": "jaro_winkler_similarity(a, b)",
        "j": "jaro_similarity(a, b)",
        "lev": "levenshtein(a, b)",
        "dl": "damerau_levenshtein(a, b)",
    }
    select = ", ".join(f"{sql} AS {name}" for name, sql in exprs.items())
    expected = duckdb.connect().execute(f"SELECT a, b, {select} FROM pairs").df()
    from splink.backends.spark import SparkAPI

    SparkAPI(spark_session=spark)  # registers Splink's jar functions (damerau_levenshtein), as the backend does
    spark_backend.register_udfs(spark)
    spark.createDataFrame(pairs).createOrReplaceTempView("pairs")
    spark_select = ", ".join(f"{spark_backend.to_spark_sql(sql)} AS {name}" for name, sql in exprs.items())
    got = spark.sql(f"SELECT a, b, {spark_select} FROM pairs").toPandas()
    both = expected.merge(got, on=["a", "b"], suffixes=("_duckdb", "_spark"))
    assert len(both) == len(pairs) > 15000
    for name in exprs:
        differ = both[both[f"{name}_duckdb"].astype(float) != both[f"{name}_spark"].astype(float)]
        assert differ.empty, f"{name} differs on {len(differ)} pairs, e.g. {differ.head(3).to_dict('records')}"
    alfie = both[(both.a == "Alfie") & (both.b == "Amelia")].iloc[0]
    assert alfie["j_spark"] == pytest.approx(0.738889, abs=1e-6)


def test_custom_sql_is_translated_for_spark():
    assert spark_backend.to_spark_sql("ELSE") == "ELSE"
    sql = spark_backend.to_spark_sql('jaro_winkler_similarity("first_name_l", "first_name_r") >= 0.92')
    assert sql == "splink_er_jaro_winkler(`first_name_l`, `first_name_r`) >= 0.92"
    # Splink's own Spark SQL names its jar's functions; they are pointed at DuckDB's definitions too.
    assert (
        spark_backend.spark_condition("jaro_winkler(a_l, a_r) > 0.9 AND jaro_sim(b_l, b_r) > 0.8")
        == "splink_er_jaro_winkler(a_l, a_r) > 0.9 AND splink_er_jaro(b_l, b_r) > 0.8"
    )
    with pytest.raises(splink_er.InputError, match="Cannot translate SQL to Spark"):
        spark_backend.to_spark_sql("l.x = = r.x")


def _run_both(tmp_path, spark, settings, overrides, data=None) -> dict:
    """The same settings and data on DuckDB and on Spark (one shared local session), through the Spark benchmark's
    own function, so the benchmark is exercised on every CI run."""
    runs, _ = run_both(settings, ["judge.kind=truth", *EXACT_U, *SMALL, *overrides], tmp_path, spark, data)
    return runs


def _differences(runs: dict) -> dict:
    """What differs between the two engines' runs: pair by pair, and in the counts of matches and judged pairs."""
    duck, spark = runs["duckdb"], runs["spark"]
    out = compare_decisions(duck.decisions, spark.decisions)
    out["probabilities_differ"] = out.pop("max_abs_probability_difference") >= 1e-9
    for name, value in (
        ("final_matches", lambda r: r.run["final_matches"]),
        ("pairs_judged", lambda r: r.run["judge"]["pairs_judged"]),
    ):
        out[f"{name}_differ"] = value(duck) != value(spark)
    return out


SAME = {
    "same_pairs": True,
    "final_match_differs": 0,
    "decided_by_differs": 0,
    "probabilities_differ": False,
    "final_matches_differ": False,
    "pairs_judged_differ": False,
}


def test_fake_1000_gives_the_same_decisions_on_spark_as_on_duckdb(tmp_path, spark):
    """The bundled demo with the SIMULATED truth judge: sample, judge, train, route, judge the band, on both."""
    runs = _run_both(tmp_path, spark, splink_er.demo_settings_path(), [])
    assert _differences(runs) == SAME
    assert runs["duckdb"].run["final_matches"] > 0 and runs["duckdb"].run["judge"]["pairs_judged"] > 0
    assert runs["spark"].metrics["f1"] == runs["duckdb"].metrics["f1"] > 0.9
    assert not (tmp_path / "spark" / ".splink_tmp").exists()  # Spark's inputs, checkpoints and predictions
    for name in ("decisions.parquet", "matches.parquet", "clusters.parquet", "report.html", "model.json"):
        assert (tmp_path / "spark" / name).exists()


def test_febrl4_slice_with_one_to_one_gives_the_same_decisions_on_spark(tmp_path, spark):
    """FEBRL4 (a link job with one-to-one routing), the first 600 entities of each file."""
    data = {}
    for name, file in (("febrl4a", "dataset4a.csv"), ("febrl4b", "dataset4b.csv")):
        frame = pd.read_csv(REPO / "data" / "febrl" / file, dtype=str)
        number = frame["rec_id"].str.extract(r"rec-(\d+)", expand=False).astype(int)
        data[name] = frame[number < 600].reset_index(drop=True)
    runs = _run_both(tmp_path, spark, REPO / "settings" / "febrl4.yaml", ["judge.max_pairs=60"], data)
    assert _differences(runs) == SAME
    assert runs["duckdb"].run["final_matches"] > 0 and runs["duckdb"].run["judge"]["pairs_judged"] > 0


def test_contacts_custom_sql_gives_the_same_decisions_on_spark(tmp_path, spark):
    """The contacts preset: PersonName and custom levels (shared inbox, household line, place, work) are DuckDB
    SQL transpiled for Spark, with term-frequency adjustments on custom levels; the records of its first 500
    persons (whole persons: a cut through households left EM levels empty)."""
    frame = pd.read_csv(REPO / "data" / "contacts" / "contacts_5k.csv", dtype=str)
    frame = frame[frame["entity"].isin(frame["entity"].drop_duplicates().head(500))].reset_index(drop=True)
    runs = _run_both(tmp_path, spark, REPO / "settings" / "contacts.yaml", ["judge.max_pairs=100"], {"contacts": frame})
    assert _differences(runs) == SAME
    assert runs["duckdb"].run["final_matches"] > 0 and runs["duckdb"].run["judge"]["pairs_judged"] > 0


def test_reweighed_prediction_on_spark_is_splinks_spark_predict_to_the_last_bit(tmp_path, spark):
    """Compare once on Spark: after training, Splink's weights SQL runs on Spark over the last prediction's
    Parquet; it must equal Splink's own Spark predict of the same model, every row and column. The demo's first
    400 records (the check is per row; Spark's time is per stage)."""
    demo = pd.read_csv(splink_er.demo_settings_path().parent / "fake_1000.csv", dtype=str).head(400)
    job = splink_er.prepare(
        splink_er.demo_settings_path(),
        data={"fake_1000": demo},
        spark=spark,
        quiet=True,
        overrides=[
            "engine.kind=spark",
            "judge.kind=truth",
            *EXACT_U,
            *SMALL,
            f"output_dir={tmp_path}",
            f"labels.path={tmp_path / 'labels.jsonl'}",
        ],
    )
    job.bootstrap()
    job.score()
    job.run_rounds(sample_rounds=1, max_rounds=1)
    backend, current = job.session.backend, job.inference._prediction
    reweighed = backend.predict(job.model, previous=current)
    reference = backend.predict(job.model)  # no previous prediction: Splink blocks and compares again
    con = duckdb.connect()
    a, b = (f"(SELECT * FROM {p.source_sql})" for p in (reweighed, reference))
    assert con.execute(f"SELECT count(*) FROM {b}").fetchall()[0][0] > 0
    assert rows_differing(con, a, b) == 0


def test_engine_spark_without_pyspark_says_how_to_install(monkeypatch, tmp_path):
    import builtins

    real_import = builtins.__import__

    def no_pyspark(name, *args, **kwargs):
        if name.startswith("pyspark"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pyspark)
    with pytest.raises(splink_er.DependencyMissing, match=r"pip install 'splink-er\[spark\]'"):
        spark_backend.make_session(load_settings(splink_er.demo_settings_path(), [f"output_dir={tmp_path}"]))

"""Spark against DuckDB: the same settings and data on both engines, decisions compared pair by pair, timed.

    python -m benchmarks.spark_vs_duckdb                         # fake_1000, FEBRL4, 100K SIMULATED persons
    python -m benchmarks.spark_vs_duckdb --only fake_1000 febrl4

fake_1000 and FEBRL4 run with the SIMULATED truth judge and u from every pair (bootstrap.u_min_count_per_level
null, u_max_pairs above the number of possible pairs), the setting under which the engines must agree exactly.
The 100K persons (benchmarks/synthetic_persons.py, no judge) run with Splink's default u sampling, which picks
different pairs on each engine, so their decisions are compared but only the timing is the point there.
Spark runs in local mode on this machine's cores. Writes benchmarks/results/spark_vs_duckdb.{json,md}.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import machine, write_results

REPO = Path(__file__).resolve().parent.parent

EXACT_U = ["bootstrap.u_max_pairs=100000000", "bootstrap.u_min_count_per_level=null"]


def run_both(settings, overrides: list[str], out: Path, spark, data: dict | None = None) -> tuple[dict, dict]:
    """The same job on DuckDB and on Spark (outputs in out/duckdb and out/spark): (results, seconds) by engine.
    tests/test_spark.py runs its equality checks through this function too."""
    import splink_er

    runs, seconds = {}, {}
    for kind in ("duckdb", "spark"):
        t0 = time.perf_counter()
        runs[kind] = splink_er.run(
            settings,
            data=data,
            spark=spark,
            quiet=True,
            overrides=[
                f"engine.kind={kind}",
                f"output_dir={out / kind}",
                f"labels.path={out / kind / 'labels.jsonl'}",
                *overrides,
            ],
        )
        seconds[kind] = time.perf_counter() - t0
    return runs, seconds


def compare(name: str, settings, overrides: list[str], tmp: Path, spark) -> dict:
    from splink_er.decision_log import compare_decisions

    runs, seconds = run_both(settings, overrides, tmp / name, spark)
    row = {
        "dataset": name,
        "blocked_pairs": runs["duckdb"].run["blocked_pairs"],
        "seconds_duckdb": round(seconds["duckdb"], 1),
        "seconds_spark": round(seconds["spark"], 1),
        "spark_over_duckdb": round(seconds["spark"] / seconds["duckdb"], 2),
        "final_matches_duckdb": runs["duckdb"].run["final_matches"],
        "final_matches_spark": runs["spark"].run["final_matches"],
        "f1_duckdb": runs["duckdb"].metrics.get("f1"),
        "f1_spark": runs["spark"].metrics.get("f1"),
        **compare_decisions(runs["duckdb"].decisions, runs["spark"].decisions),
    }
    print(row, file=sys.stderr)
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="+", choices=["fake_1000", "febrl4", "persons_100k"])
    a = ap.parse_args()
    import splink_er
    from benchmarks.scale import prepare_data, settings_dict
    from splink_er.engine.spark import make_session
    from splink_er.settings import load_settings

    wanted = a.only or ["fake_1000", "febrl4", "persons_100k"]
    spark = make_session(load_settings(splink_er.demo_settings_path()))  # one session, as a notebook would hold
    rows = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if "fake_1000" in wanted:
            rows.append(
                compare("fake_1000", splink_er.demo_settings_path(), ["judge.kind=truth", *EXACT_U], tmp, spark)
            )
        if "febrl4" in wanted:
            rows.append(
                compare("febrl4", REPO / "settings" / "febrl4.yaml", ["judge.kind=truth", *EXACT_U], tmp, spark)
            )
        if "persons_100k" in wanted:
            path = prepare_data(100_000, tmp)
            rows.append(
                compare(
                    "persons_100k (default u sampling)", settings_dict(path, str(tmp / "p"), "parquet"), [], tmp, spark
                )
            )
    mach = machine()
    lines = [
        "| dataset | blocked pairs | final matches DuckDB / Spark | final_match differs | decided_by differs "
        "| max abs p difference | F1 DuckDB / Spark | seconds DuckDB / Spark | Spark / DuckDB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        f1 = f"{r['f1_duckdb']} / {r['f1_spark']}" if r["f1_duckdb"] is not None else "no truth"
        lines.append(
            f"| {r['dataset']} | {r['blocked_pairs']:,} | {r['final_matches_duckdb']:,} / "
            f"{r['final_matches_spark']:,} | {r.get('final_match_differs')} | {r.get('decided_by_differs')} | "
            f"{r.get('max_abs_probability_difference', float('nan')):.1e} | {f1} | {r['seconds_duckdb']} / "
            f"{r['seconds_spark']} | {r['spark_over_duckdb']} |"
        )
    lines += [
        "",
        f"Machine: {mach}. Spark {spark.version} in local mode (master {spark.sparkContext.master}). "
        "fake_1000 and FEBRL4: SIMULATED truth judge, u from every pair. persons_100k: SIMULATED data, no judge, "
        "Splink's default u sampling (engine-specific), so its decisions may differ.",
    ]
    write_results("spark_vs_duckdb", {"machine": mach, "spark": spark.version, "results": rows}, lines)
    spark.stop()


if __name__ == "__main__":
    main()

"""Scale benchmark: splink_er's full run (judge excluded) against plain Splink on the same settings, same data.

    python -m benchmarks.scale                      # 100K and 1M records
    python -m benchmarks.scale --sizes 100000 1000000 5000000
    python -m benchmarks.scale --sizes 1000000 --repeat 3   # the median of 3 alternating runs per side

Data: SIMULATED persons from benchmarks/synthetic_persons.py (seeded), written once per size to a temp directory.
Each measurement runs in a fresh process (so peak memory is its own), in this order per size:
  plain  - plain Splink: register the records, prior from the deterministic rules, u by random sampling, EM,
           predict, cluster at p >= 0.5: the same training, prediction and clustering splink_er runs.
           Its input already holds the normalized columns, so splink_er's normalization counts as overhead.
  loop   - `splink_er.run` with judge kind none: load + normalize, the same bootstrap and predict, routing,
           decisions, clustering, every output (Parquet, decision log, report.html).
  judged - `splink_er.run` with the SIMULATED truth judge (zero latency: the loop's own compute), a 500-pair sample
           and 4 rounds of up to 500 band pairs: training, re-weighing, routing and evaluating every round.
Ratio = loop / plain wall time (medians with --repeat; the sides alternate, so a noisy neighbour hits both).
The targets at 1M records: ratio <= 1.15 and peak memory <= 2 GB without a judge; judged / plain <= 1.5. The
table says whether each was met.
Writes benchmarks/results/scale.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import machine, write_results

REPO = Path(__file__).resolve().parent.parent


def settings_dict(
    data_path: str, out: str, materialisation: str, memory_limit: str | None = None, judged: bool = False
) -> dict:
    if judged:  # the truth judge reads `entity`; a fixed number of rounds, whatever the model expects to gain
        extra = {
            "truth_column": "entity",
            "judge": {"kind": "truth", "max_pairs": 2500},
            "sampling": {"budget_per_round": 500, "rounds": 1},
            "loop": {"max_rounds": 4, "band_per_round": 500, "min_new_labels": 1, "min_f1_gain": 0},
        }
        return settings_dict(data_path, out, materialisation, memory_limit) | extra
    return {
        "name": "scale_persons",
        "link_type": "dedupe_only",
        "sources": [
            {
                "name": "persons",
                "path": data_path,
                "id_column": "record_id",
                "prepare": [
                    {"column": "first_name", "kind": "first_name_canonical"},
                    {"column": "email", "kind": "email", "into": "email_norm"},
                ],
                "derive": {"zip5": "left(zip, 5)", "yob": "left(dob, 4)"},
            }
        ],
        # No truth column: a real job has none, and plain Splink evaluates nothing (F1 is benchmarked elsewhere).
        "comparisons": [
            {"kind": "PersonName", "args": {"middle": None, "suffix": None, "nickname": None}},
            {"kind": "DateOfBirthComparison", "column": "dob", "args": {"input_is_string": True}},
            {"kind": "ExactMatch", "column": "email_norm"},
            {"kind": "ExactMatch", "column": "zip5"},
        ],
        # Broad on purpose: about 25M comparisons at 1M records, the size the memory target names.
        "blocking_rules": [
            ["email_norm"],
            ["last_name", "first_name_canonical"],
            ["dob", "zip5"],
            ["first_name_canonical", "dob"],
            ["zip5", "yob"],
            ["last_name", "zip5"],
            ["last_name", "yob"],
        ],
        "bootstrap": {
            "deterministic_rules": [["email_norm"], ["last_name", "first_name_canonical", "dob"]],
            "recall": 0.7,
            "u_max_pairs": 1_000_000,
            "em_blocking_rules": [["email_norm"], ["dob"]],
        },
        "judge": {"kind": "none"},
        "engine": {"materialisation": materialisation, "memory_limit": memory_limit},
        "output_dir": out,
        "labels": {"path": f"{out}/labels.jsonl"},
    }


def child_plain(data_path: str, out: str, materialisation: str, memory_limit: str | None) -> dict:
    """Plain Splink on the normalized records: the same splink settings, training, predict and clustering."""
    from splink_er import model as model_mod
    from splink_er import training
    from splink_er.engine.duckdb_engine import make_db
    from splink_er.settings import load_settings

    s = load_settings(settings_dict(data_path, out, materialisation, memory_limit))
    t = {}
    t0 = time.perf_counter()
    db = make_db(s)  # the same engine settings as splink_er's run
    con = db.duckdb_con
    con.execute(f"CREATE TABLE persons AS SELECT * FROM read_parquet('{data_path}.normalized.parquet')")
    sdf = db.register("persons", dataset_display_name="persons")
    t["load"] = time.perf_counter() - t0
    untrained = model_mod.splink_settings_dict(s)
    t1 = time.perf_counter()
    boot = training.bootstrap([sdf], s, untrained)
    t["bootstrap"] = time.perf_counter() - t1
    t1 = time.perf_counter()
    linker = model_mod.make_linker([sdf], boot)
    pred = linker.inference.predict()
    t["predict"] = time.perf_counter() - t1
    t1 = time.perf_counter()
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(pred, threshold_match_probability=0.5)
    n_clusters = con.execute(f"SELECT count(DISTINCT cluster_id) FROM {clusters.physical_name}").fetchall()[0][0]
    t["cluster"] = time.perf_counter() - t1
    comparisons = con.execute(f"SELECT count(*) FROM {pred.physical_name}").fetchall()[0][0]
    return {"seconds": time.perf_counter() - t0, "stages": t, "comparisons": comparisons, "entities": n_clusters}


def child_loop(data_path: str, out: str, materialisation: str, memory_limit: str | None, judged=False) -> dict:
    import splink_er

    t0 = time.perf_counter()
    job = splink_er.prepare(settings_dict(data_path, out, materialisation, memory_limit, judged), quiet=True)
    result = job.run()
    return {
        "seconds": time.perf_counter() - t0,
        "stages": dict(job.timings),
        "comparisons": result.run["blocked_pairs"],
        "entities": int(result.clusters.entity_id.nunique()),
        "rounds": len(result.run["rounds"]),
        "pairs_judged": result.run["judge"]["pairs_judged"],
        "f1": result.metrics.get("f1"),
    }


def child_judged(data_path: str, out: str, materialisation: str, memory_limit: str | None) -> dict:
    return child_loop(data_path, out, materialisation, memory_limit, judged=True)


def run_child(kind: str, data_path: str, out: str, materialisation: str, memory_limit: str | None) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.scale",
        "--child",
        kind,
        data_path,
        out,
        materialisation,
        memory_limit or "none",
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if r.returncode:
        raise RuntimeError(f"{kind} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def prepare_data(n: int, tmp: Path) -> str:
    """Generate the records, and the normalized copy plain Splink reads (normalized by splink_er's own code)."""
    import duckdb

    from benchmarks.synthetic_persons import make_persons
    from splink_er import model as model_mod
    from splink_er.settings import load_settings
    from splink_er.sources import load_sources

    path = tmp / f"persons_{n}.parquet"
    make_persons(n, seed=7).to_parquet(path, index=False)
    s = load_settings(settings_dict(str(path), str(tmp / "x"), "table"))
    con = duckdb.connect()
    loaded = load_sources(con, s, model_mod.required_columns(s, model_mod.splink_settings_dict(s)))
    con.execute(
        f"COPY (SELECT * EXCLUDE (source_dataset) FROM {loaded.tables['persons']}) "
        f"TO '{path}.normalized.parquet' (FORMAT parquet)"
    )
    return str(path)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--materialisation", choices=["table", "parquet"], default="parquet")
    ap.add_argument("--memory-limit", default=None, help="engine.memory_limit for both sides, e.g. 1GB")
    ap.add_argument("--repeat", type=int, default=1, help="runs per side; the median is reported")
    ap.add_argument(
        "--sides",
        nargs="+",
        choices=["plain", "loop", "judged"],
        default=["plain", "loop", "judged"],
        help="which runs to make (one side alone: no ratio)",
    )
    ap.add_argument("--name", default="scale", help="results file stem (benchmarks/results/<name>.json|md)")
    ap.add_argument("--child", nargs=5)
    a = ap.parse_args()
    if a.child:
        kind, data_path, out, mat, mem = a.child
        child = {"plain": child_plain, "loop": child_loop, "judged": child_judged}[kind]
        res = child(data_path, out, mat, None if mem == "none" else mem)
        res["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
        print(json.dumps(res, default=float))
        return
    rows = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for n in a.sizes:
            t0 = time.perf_counter()
            path = prepare_data(n, tmp)
            print(f"{n:,} records generated in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
            plains, loops, judgeds = [], [], []
            for i in range(a.repeat):
                if "plain" in a.sides:
                    plains.append(
                        run_child("plain", path, str(tmp / f"plain_{n}_{i}"), a.materialisation, a.memory_limit)
                    )
                if "loop" in a.sides:
                    loops.append(run_child("loop", path, str(tmp / f"loop_{n}_{i}"), a.materialisation, a.memory_limit))
                if "judged" in a.sides:
                    judgeds.append(
                        run_child("judged", path, str(tmp / f"judged_{n}_{i}"), a.materialisation, a.memory_limit)
                    )
            if not (plains and loops):  # one side alone: its stages, memory and throughput, no ratio
                rows.append({"records": n, "side": a.sides[0], "result": (plains or loops)[0]})
                print(json.dumps(rows[-1], default=float), file=sys.stderr)
                continue
            plain, loop = (sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2] for runs in (plains, loops))
            row = {
                "records": n,
                "comparisons": loop["comparisons"],
                "plain": plain,
                "loop": loop,
                "plain_seconds_all": [round(r["seconds"], 2) for r in plains],
                "loop_seconds_all": [round(r["seconds"], 2) for r in loops],
                "ratio": round(loop["seconds"] / plain["seconds"], 3),
                "comparisons_per_second_plain_predict": round(plain["comparisons"] / plain["stages"]["predict"]),
            }
            if judgeds:
                judged = sorted(judgeds, key=lambda r: r["seconds"])[len(judgeds) // 2]
                row |= {
                    "judged": judged,
                    "judged_seconds_all": [round(r["seconds"], 2) for r in judgeds],
                    "ratio_judged": round(judged["seconds"] / plain["seconds"], 3),
                }
            rows.append(row)
            print(json.dumps(row, default=float), file=sys.stderr)
    mach = machine()
    lines = [
        "| records | comparisons | plain Splink s | splink_er s (judge none) | ratio | peak GB plain / splink_er "
        "| plain predict comparisons/s | splink_er stages (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "side" in r:
            x = r["result"]
            st = ", ".join(f"{k} {v:.1f}" for k, v in x["stages"].items())
            lines.append(
                f"| {r['records']:,} | {x['comparisons']:,} | {x['seconds']:.1f} s ({r['side']} only) | | "
                f"not measured | {x['peak_rss_gb']:.2f} | | {st} |"
            )
            continue
        st = ", ".join(f"{k} {v:.1f}" for k, v in r["loop"]["stages"].items())
        lines.append(
            f"| {r['records']:,} | {r['comparisons']:,} | {r['plain']['seconds']:.1f} | {r['loop']['seconds']:.1f} | "
            f"{r['ratio']:.2f} | {r['plain']['peak_rss_gb']:.2f} / {r['loop']['peak_rss_gb']:.2f} | "
            f"{r['comparisons_per_second_plain_predict']:,} | {st} |"
        )
    for r in rows:
        if r["records"] == 1_000_000 and "ratio" in r:
            lines += [
                "",
                f"Targets at 1M records: ratio {r['ratio']:.2f} <= 1.15: "
                f"{'met' if r['ratio'] <= 1.15 else 'NOT met'}; splink_er peak {r['loop']['peak_rss_gb']:.2f} GB "
                f"<= 2 GB: {'met' if r['loop']['peak_rss_gb'] <= 2 else 'NOT met'} (runs per side: {a.repeat}; "
                f"plain {r['plain_seconds_all']} s, splink_er {r['loop_seconds_all']} s).",
            ]
    for r in rows:
        if "judged" in r:
            j, target = r["judged"], r["records"] == 1_000_000
            verdict = f" <= 1.5: {'met' if r['ratio_judged'] <= 1.5 else 'NOT met'}" if target else ""
            lines.append(
                f"\n{r['records']:,} records with the SIMULATED truth judge ({j['rounds']} rounds, "
                f"{j['pairs_judged']:,} pairs judged, F1 {j['f1']:.4f}): {j['seconds']:.1f} s, ratio to plain "
                f"{r['ratio_judged']:.2f}{verdict}; peak {j['peak_rss_gb']:.2f} GB (runs: {r['judged_seconds_all']} s; "
                "stages: " + ", ".join(f"{k} {v:.1f}" for k, v in j["stages"].items()) + ")."
            )
    lines += [
        "",
        f"Machine: {mach}; materialisation: {a.materialisation}; memory limit: {a.memory_limit}. "
        "Data SIMULATED (benchmarks/synthetic_persons.py, seed 7). Each side ran in its own process.",
    ]
    write_results(
        a.name,
        {
            "machine": mach,
            "materialisation": a.materialisation,
            "memory_limit": a.memory_limit,
            "repeat": a.repeat,
            "results": rows,
        },
        lines,
    )


if __name__ == "__main__":
    main()

"""What the entity store costs a run: stable ids, the change feed and the store's transaction, at scale.

    python -m benchmarks.entity_store                    # 1M records, 3 runs per side
    python -m benchmarks.entity_store --records 100000 --repeat 1

Data: SIMULATED persons (benchmarks/synthetic_persons.py, seed 7), the scale benchmark's settings and judge none.
Runs, each in a fresh process, on the first 90% of the records:
  off    - `entities.enabled: false` (clusters keep this run's cluster ids)
  first  - entities on, an empty store: every entity is created (`--repeat` times, each on a store of its own)
  again  - entities on, the store of `first`: the steady state of a job run again (no change expected)
and then `grown`: all the records (10% new) against the same store. `off` and `again` alternate `--repeat` times;
medians are reported (of `first`: the run of median entity-stage share). Overhead = again / off (the same work but the entity layer), and the entity stage's share
of each run's own time (measured in the same run). Target: at most 10% at 1M records.
Writes benchmarks/results/entity_store.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import machine, write_results
from benchmarks.scale import settings_dict

REPO = Path(__file__).resolve().parent.parent


def child(data_path: str, out: str, store: str, enabled: bool) -> dict:
    import splink_er

    d = settings_dict(data_path, out, "parquet")
    d["entities"] = {"enabled": enabled, "path": store}
    t0 = time.perf_counter()
    job = splink_er.prepare(d, quiet=True)
    result = job.run()
    return {
        "seconds": time.perf_counter() - t0,
        "entities_seconds": job.timings.get("entities", 0.0),
        "events": result.run["entity_changes"].get("events", {}),
        "entities": int(result.clusters.entity_id.nunique()),
        "comparisons": result.run["blocked_pairs"],
    }


def run_child(data_path: str, out: str, store: str, enabled: bool) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.entity_store", "--child", data_path, out, store, str(enabled)]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if r.returncode:
        raise RuntimeError(f"run failed:\n{r.stderr[-3000:]}")
    shutil.rmtree(out, ignore_errors=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def median(runs: list[dict]) -> dict:
    return sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]


def median_share(runs: list[dict]) -> dict:
    """The run whose entity-stage share of its own time is the median (the share is what the target bounds)."""
    return sorted(runs, key=lambda r: r["entities_seconds"] / r["seconds"])[len(runs) // 2]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--child", nargs=4)
    a = ap.parse_args()
    if a.child:
        data_path, out, store, enabled = a.child
        res = child(data_path, out, store, enabled == "True")
        res["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
        print(json.dumps(res, default=float))
        return
    import pandas as pd

    from benchmarks.synthetic_persons import make_persons

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        persons = make_persons(a.records, seed=7)
        full, base = tmp / "all.parquet", tmp / "base.parquet"
        persons.to_parquet(full, index=False)
        persons.iloc[: int(len(persons) * 0.9)].to_parquet(base, index=False)
        del persons
        store = str(tmp / "store.duckdb")
        firsts, offs, agains = [], [], []
        for i in range(a.repeat):  # each first run on an empty store of its own; `again` runs on the first's
            firsts.append(run_child(str(base), str(tmp / f"first{i}"), store if i == 0 else f"{store}.{i}", True))
            print(
                f"first: {firsts[-1]['seconds']:.1f}s, entities {firsts[-1]['entities_seconds']:.1f}s", file=sys.stderr
            )
        for i in range(a.repeat):
            offs.append(run_child(str(base), str(tmp / f"off{i}"), str(tmp / "unused.duckdb"), False))
            agains.append(run_child(str(base), str(tmp / f"again{i}"), store, True))
            print(f"off {offs[-1]['seconds']:.1f}s, again {agains[-1]['seconds']:.1f}s", file=sys.stderr)
        grown = run_child(str(full), str(tmp / "grown"), store, True)
        size = pd.read_parquet(full, columns=[]).shape[0]
    off, again, first = median(offs), median(agains), median_share(firsts)
    ratio = again["seconds"] / off["seconds"]
    rows = [("off", off), ("first (empty store)", first), ("again (same records)", again), ("grown (+10%)", grown)]
    lines = [
        f"Entity store at {int(size * 0.9):,} records ({size:,} with the 10% new), judge none, median of "
        f"{a.repeat} for off, first and again (first: the run of median entity-stage share).",
        "",
        "| run | seconds | entity stage s | share of the run | entities | events |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in rows:
        share = r["entities_seconds"] / r["seconds"]
        events = ", ".join(f"{k} {v:,}" for k, v in sorted(r["events"].items())) or "none"
        lines.append(
            f"| {name} | {r['seconds']:.1f} | {r['entities_seconds']:.2f} | {share:.1%} | {r['entities']:,} | "
            f"{events} |"
        )
    worst_share = max(r["entities_seconds"] / r["seconds"] for _, r in rows[1:])
    lines += [
        "",
        f"again / off = {ratio:.3f} (off {[round(r['seconds'], 1) for r in offs]} s, again "
        f"{[round(r['seconds'], 1) for r in agains]} s). First runs' entity-stage shares "
        f"{', '.join(format(r['entities_seconds'] / r['seconds'], '.1%') for r in firsts)}. Largest entity-stage share {worst_share:.1%}: "
        f"target <= 10% {'met' if worst_share <= 0.10 else 'NOT met'}.",
        "",
        f"Machine: {machine()}. Data SIMULATED (benchmarks/synthetic_persons.py, seed 7).",
    ]
    write_results(
        "entity_store",
        {
            "machine": machine(),
            "records": size,
            "repeat": a.repeat,
            "ratio": ratio,
            "runs": dict(rows),
            "firsts": firsts,
        },
        lines,
    )


if __name__ == "__main__":
    main()

"""Benchmark: person-name normalization throughput at 1M candidate names (2 cores here).

    python -m benchmarks.normalize_names [N]          # default 1,000,000

Names are synthesized from the NC ballot and registration names in data/ncsbe, in the formats candidate data
carries ("LAST, FIRST M", "First Last", quoted and parenthesised nicknames, suffixes, party tags, running mates),
seeded; about two thirds of them distinct. Times the whole `parse_names` (distinct values, fast path, nameparser,
both cores) and the same work on one core, and prints names per second.
Writes benchmarks/results/normalize_names.json.
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

import pandas as pd

from benchmarks.common import RESULTS, machine
from splink_er.normalize.names import parse_names

REPO = Path(__file__).resolve().parents[1]


def synthesize(n: int, seed: int = 5) -> list[str]:
    reg = pd.read_csv(REPO / "data/ncsbe/registration.csv", dtype=str)
    firsts, lasts = reg.first_name.dropna().tolist(), reg.last_name.dropna().tolist()
    middles = reg.middle_name.dropna().tolist()
    rng = random.Random(seed)
    forms = [
        lambda f, m, l: f"{l}, {f} {m[0]}",
        lambda f, m, l: f"{f.title()} {l.title()}",
        lambda f, m, l: f"{f.title()} {m[0]}. ({f[:3].title()}) {l.title()}, Jr.",
        lambda f, m, l: f'{f.title()} "{f[:3].title()}" {l.title()}',
        lambda f, m, l: f"{f.title()} {l.title()} (R)",
        lambda f, m, l: f"{f.title()} {l.title()} / {rng.choice(firsts).title()} {rng.choice(lasts).title()}",
        lambda f, m, l: f"{l}, {f} {m}",
    ]
    pool = [
        rng.choice(forms)(rng.choice(firsts), rng.choice(middles) or "A", rng.choice(lasts))
        for _ in range(int(n * 0.67))
    ]
    return pool + [rng.choice(pool) for _ in range(n - len(pool))]


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    names = synthesize(n)
    distinct = len(set(names))
    runs = {}
    for label, procs in (("all cores", None), ("one core", 1)):
        t0 = time.perf_counter()
        parsed = parse_names(names, processes=procs)
        seconds = time.perf_counter() - t0
        runs[label] = {
            "seconds": round(seconds, 2),
            "names_per_second": round(n / seconds),
            "distinct_per_second": round(distinct / seconds),
        }
        print(label, runs[label], flush=True)
    assert len(parsed) == distinct
    result = {"names": n, "distinct": distinct, "runs": runs, "target_seconds": 60, "machine": machine()}
    out = RESULTS / "normalize_names.json"
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""Benchmark: LLM judge throughput with the real google-genai client against a loopback server (SIMULATED LLM).

    python -m benchmarks.judge_throughput            # ~3 minutes on 2 cores

The server answers every call after an injected 800 ms and refuses more than 1,000 requests per minute (429
with Retry-After); the judge is limited to judge.rpm = 1,000 too. For batch sizes 1, 10, 20, 50 and concurrency
1-32 it measures pairs per second, with the ceiling min(rpm / 60, concurrency / latency) x batch beside it, and
prompt and output tokens per pair. A fault run (defaults, seeded 429s, 503s, timeouts, malformed and partial
answers) checks that no pair is lost or answered twice. Pairs are built from the bundled fake_1000 records.
Writes benchmarks/results/judge_throughput.{json,md,png}.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections import Counter
from pathlib import Path

import pandas as pd

import splink_er
from benchmarks.common import RESULTS, machine
from splink_er.judges.base import run_judge
from splink_er.judges.gemini import GeminiJudge
from splink_er.pairs import PairContext
from splink_er.settings import LLMJudgeSettings
from splink_er.testing import FakeLLMServer

LATENCY, RPM = 0.8, 1000
BATCHES, CONCURRENCY = [1, 10, 20, 50], [1, 2, 4, 8, 16, 32]


def make_pairs(n: int) -> list[PairContext]:
    records = pd.read_csv(splink_er.demo_settings_path().parent / "fake_1000.csv", dtype=str)
    records = records[["first_name", "surname", "dob", "city", "email"]].where(records.notna(), None)
    rows = records.to_dict("records")
    rng = random.Random(7)
    return [
        PairContext(("a", str(i), "b", str(i)), rows[rng.randrange(len(rows))], rows[rng.randrange(len(rows))], "band")
        for i in range(n)
    ]


def measure(batch: int, concurrency: int, seconds: float = 4.0) -> dict:
    ceiling = min(RPM / 60, concurrency / LATENCY) * batch
    n = int(max(batch * concurrency, min(ceiling * seconds, 3000)))
    pairs = make_pairs(n)
    with FakeLLMServer(latency=LATENCY, rpm=RPM) as srv:
        s = LLMJudgeSettings(kind="gemini", base_url=srv.url, batch_size=batch, concurrency=concurrency, rpm=RPM)
        judge = GeminiJudge(s, model="gemini-2.5-flash", api_key="benchmark-key", base_url=srv.url)
        t0 = time.perf_counter()
        out = run_judge(judge, pairs, batch, concurrency, lambda d: None)
        elapsed = time.perf_counter() - t0
    u = judge.usage
    return {
        "batch_size": batch,
        "concurrency": concurrency,
        "pairs": n,
        "seconds": round(elapsed, 2),
        "pairs_per_second": round(n / elapsed, 1),
        "ceiling_pairs_per_second": round(ceiling, 1),
        "share_of_ceiling": round(n / elapsed / ceiling, 3),
        "calls": u.calls,
        "retries": u.retries,
        "http_429": srv.status_counts.get(429, 0),
        "needs_review": sum(d.needs_review for d in out),
        "input_tokens_per_pair": round(u.input_tokens / n, 1),
        "output_tokens_per_pair": round(u.output_tokens / n, 1),
    }


def fault_run(n: int = 2000) -> dict:
    """Defaults with ~15% of calls faulted (seeded): every pair must end with exactly one decision."""
    rng = random.Random(11)
    kinds = ["429", "503", "timeout", "malformed", "drop", "duplicate", "bad_confidence"]

    def faults(call_no, model):
        return rng.choice(kinds) if rng.random() < 0.15 else None

    pairs = make_pairs(n)
    stored: list = []
    with FakeLLMServer(latency=LATENCY, rpm=RPM, faults=faults, timeout_sleep=3.0) as srv:
        s = LLMJudgeSettings(kind="gemini", base_url=srv.url, rpm=RPM, timeout_seconds=2.0, backoff_seconds=0.2)
        judge = GeminiJudge(s, model="gemini-2.5-flash", api_key="benchmark-key", base_url=srv.url)
        t0 = time.perf_counter()
        out = run_judge(judge, pairs, s.batch_size, s.concurrency, stored.extend)
        elapsed = time.perf_counter() - t0
    per_key = Counter(d.key for d in stored)
    asked = {p.key for p in pairs}
    return {
        "pairs": n,
        "seconds": round(elapsed, 2),
        "pairs_per_second": round(n / elapsed, 1),
        "faults_injected": Counter(c["fault"] for c in srv.answered if c["fault"])
        | Counter({str(k): v for k, v in srv.status_counts.items() if k != 200}),
        "lost": len(asked - set(per_key)),
        "answered_twice": sum(1 for c in per_key.values() if c > 1),
        "decided": sum(d.match is not None for d in out),
        "needs_review": sum(d.needs_review for d in out),
        "retries": judge.usage.retries,
        "reasked_pairs": judge.usage.reasked_pairs,
    }


def chart(rows: list[dict], path: Path) -> None:
    import altair as alt

    df = pd.DataFrame(rows)
    base = alt.Chart(df).encode(
        x=alt.X("concurrency:Q", scale=alt.Scale(type="log", base=2), title="concurrency"),
        color=alt.Color("batch_size:N", title="pairs per call"),
    )
    lines = base.mark_line(point=True).encode(
        y=alt.Y("pairs_per_second:Q", scale=alt.Scale(type="log"), title="pairs per second")
    )
    ceil = base.mark_line(strokeDash=[4, 3], opacity=0.6).encode(y="ceiling_pairs_per_second:Q")
    (lines + ceil).properties(
        title=f"Judge throughput, {LATENCY * 1000:.0f} ms per call, {RPM} rpm (dashed: ceiling)", width=520, height=320
    ).save(str(path), scale_factor=2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", nargs="+", type=int, default=BATCHES)
    ap.add_argument("--concurrency", nargs="+", type=int, default=CONCURRENCY)
    ap.add_argument("--fault-pairs", type=int, default=2000, help="pairs of the fault run")
    args = ap.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    rows = []
    for batch in args.batches:
        for conc in args.concurrency:
            row = measure(batch, conc)
            rows.append(row)
            print(json.dumps(row), flush=True)
    faults = fault_run(args.fault_pairs)
    print(json.dumps(faults, default=str), flush=True)
    default = next((r for r in rows if r["batch_size"] == 20 and r["concurrency"] == 16), rows[0])
    mach = machine()
    (RESULTS / "judge_throughput.json").write_text(
        json.dumps(
            {
                "latency_seconds": LATENCY,
                "rpm": RPM,
                "machine": mach,
                "runs": rows,
                "default": default,
                "fault_run": faults,
            },
            indent=2,
            default=str,
        )
    )
    md = [
        f"# Judge throughput (google-genai client -> loopback SIMULATED LLM, {LATENCY * 1000:.0f} ms/call, {RPM} rpm)",
        "",
        f"Machine: {mach['cpus']} CPUs, Python {mach['python']}, {mach['platform']}.",
        "Command: `python -m benchmarks.judge_throughput`. Ceiling = min(rpm / 60, concurrency / latency) x batch.",
        "",
        f"**Defaults (batch 20, concurrency 16): {default['pairs_per_second']} pairs/s of a "
        f"{default['ceiling_pairs_per_second']} ceiling ({default['share_of_ceiling']:.0%}).**",
        "",
        "| batch | concurrency | pairs/s | ceiling | share | 429s | input tokens/pair | output tokens/pair |",
        "|---|---|---|---|---|---|---|---|",
    ]
    md += [
        f"| {r['batch_size']} | {r['concurrency']} | {r['pairs_per_second']} | {r['ceiling_pairs_per_second']} | "
        f"{r['share_of_ceiling']:.0%} | {r['http_429']} | {r['input_tokens_per_pair']} | "
        f"{r['output_tokens_per_pair']} |"
        for r in rows
    ]
    md += [
        "",
        f"Fault run (defaults, ~15% of calls faulted): {faults['pairs']} pairs, lost {faults['lost']}, answered "
        f"twice {faults['answered_twice']}, decided {faults['decided']}, needs_review {faults['needs_review']}, "
        f"retries {faults['retries']}, re-asked pairs {faults['reasked_pairs']}, {faults['pairs_per_second']} pairs/s; "
        f"faults: {dict(faults['faults_injected'])}.",
        "",
        "![throughput](judge_throughput.png)",
    ]
    (RESULTS / "judge_throughput.md").write_text("\n".join(md) + "\n")
    chart(rows, RESULTS / "judge_throughput.png")
    print("\n".join(md))


if __name__ == "__main__":
    main()

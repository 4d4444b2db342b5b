"""Incremental resolution against the entity store, next to a full re-run, and through the HTTP service.

    python -m benchmarks.incremental                                  # stores of 100K and 1M, 1,000 and 10,000 new
    python -m benchmarks.incremental --sizes 100000 --new 1000 --repeat 1 --skip-real --requests 0
    python -m benchmarks.incremental --real-only                      # the agreement scenarios only (a minute)

1. SIMULATED persons (benchmarks/synthetic_persons.py, seed 7; the scale benchmark's settings, judge none). Per
   store size N: a batch run over N records makes the store and the model; then, `--repeat` times, alternating,
   each in a fresh process on a fresh copy of that store:
     resolve - `splink_er.resolve` of k new records (the frozen model, the store);
     re-run  - what a user runs today: `splink_er.run` over the N + k records, entities on, the same store.
   Ratio = resolve / re-run (medians). Target: 1,000 new against 1M <= 10%.
   Then `splink-er serve` on the store: 200 single-record requests one after another (latency percentiles),
   8 concurrent clients sending 25 single records each, and 10 requests of 100 records (records/s). Targets at 1M:
   p95 <= 250 ms one at a time, >= 100 records/s in batches of 100. The judge is none: its latency is excluded.
2. Real data (in this repository): the FEC candidates of 2008-2012 make the store, 2014 arrives; NC candidate
   filings of 2020-2023 make the store, 2024-2025 arrive. Incremental = a run on the early part, then one resolve
   of the late part. Batch = one run over the union with the early run's model frozen. Both use the SIMULATED
   truth judge for the band (budget large enough for every band pair), so they differ only where the order of
   arrival matters. Agreement = matched pairs in both / matched pairs in either (pairs of records in one entity);
   every difference is listed with its reason. F1 of each against the truth column. Targets: agreement >= 99.5%,
   F1 within 0.005 of the batch run's.
Writes benchmarks/results/incremental.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from itertools import combinations
from pathlib import Path

import yaml

from benchmarks.common import machine, write_results
from benchmarks.scale import settings_dict

REPO = Path(__file__).resolve().parent.parent


# ---- children (fresh processes) -------------------------------------------------------------------------
def child_run(data_path: str, out: str, store: str) -> dict:
    import splink_er

    d = settings_dict(data_path, out, "parquet")
    d["entities"] = {"path": store}
    t0 = time.perf_counter()
    splink_er.run(d, quiet=True)
    return {"seconds": time.perf_counter() - t0}


def child_resolve(data_path: str, out: str, store: str, new_path: str) -> dict:
    import pandas as pd

    import splink_er

    d = settings_dict(data_path, out, "parquet")
    d["entities"] = {"path": store}
    rows = pd.read_parquet(new_path)
    t0 = time.perf_counter()
    done = splink_er.resolve(d, rows.drop(columns="entity"), quiet=True)
    return {"seconds": time.perf_counter() - t0, "counts": done.counts()}


def in_child(*args: str) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.incremental", "--child", *args]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if r.returncode:
        raise RuntimeError(f"{args[0]} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


# ---- 1. simulated persons ------------------------------------------------------------------------------
def simulated(size: int, news: list[int], repeat: int, requests: int, tmp: Path) -> dict:
    from benchmarks.synthetic_persons import make_persons

    # make_persons gives about the number asked for (fewer at 1M): ask for a margin, so the service runs out of
    # fresh records for none of its batches.
    persons = make_persons(int((size + max(news) + 1 + 2 * requests + 1_000) * 1.05), seed=7)
    base = tmp / "base.parquet"
    persons.iloc[:size].drop(columns="entity").to_parquet(base, index=False)
    out, store = tmp / "out", tmp / "store.duckdb"
    t = in_child("run", str(base), str(out), str(store))["seconds"]
    print(f"{size:,}: batch run {t:.1f}s", file=sys.stderr)
    pristine = tmp / "pristine.duckdb"
    shutil.copy(store, pristine)
    result = {"records": size, "first_run_seconds": t, "new": {}}
    for k in news:
        new = tmp / f"new_{k}.parquet"
        persons.iloc[size : size + k].to_parquet(new, index=False)
        union = tmp / f"union_{k}.parquet"
        persons.iloc[: size + k].drop(columns="entity").to_parquet(union, index=False)
        resolves, reruns, counts = [], [], {}
        for i in range(repeat):
            shutil.copy(pristine, store)
            r = in_child("resolve", str(base), str(out), str(store), str(new))
            resolves.append(r["seconds"])
            counts = r["counts"]
            shutil.copy(pristine, store)
            reruns.append(in_child("run", str(union), str(tmp / f"rerun{i}"), str(store))["seconds"])
            shutil.rmtree(tmp / f"rerun{i}", ignore_errors=True)
            print(f"  {k:,} new: resolve {resolves[-1]:.2f}s, re-run {reruns[-1]:.1f}s", file=sys.stderr)
        result["new"][k] = {
            "resolve_seconds": resolves,
            "rerun_seconds": reruns,
            "ratio": median(resolves) / median(reruns),
            "actions": counts,
        }
    shutil.copy(pristine, store)
    if requests:
        fresh = persons.iloc[size + max(news) :].drop(columns="entity")
        result["service"] = service_latency(base, out, store, fresh, requests, tmp)
    return result


def service_latency(base: Path, out: Path, store: Path, fresh, n: int, tmp: Path) -> dict:
    """`n` single records one after another, 8 clients sending n / 8 each, then batches of 100."""
    d = settings_dict(str(base), str(out), "parquet")
    d["entities"] = {"path": str(store)}
    (tmp / "serve.yaml").write_text(yaml.safe_dump(d))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(tmp / "serve.log", "w")  # noqa: SIM115 - the server's lifetime
    cmd = [sys.executable, "-m", "splink_er.cli", "serve", str(tmp / "serve.yaml"), "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=dict(os.environ))
    url = f"http://127.0.0.1:{port}"

    def post(recs: list[dict]) -> float:
        body = json.dumps({"records": recs}).encode()
        req = urllib.request.Request(url + "/resolve", body, {"content-type": "application/json"}, method="POST")
        t0 = time.perf_counter()
        with urllib.request.urlopen(req, timeout=600) as r:
            assert r.status == 200
            r.read()
        return time.perf_counter() - t0

    try:
        for _ in range(600):
            if proc.poll() is not None:
                raise RuntimeError("the service stopped:\n" + (tmp / "serve.log").read_text()[-3000:])
            try:
                urllib.request.urlopen(url + "/health", timeout=5)
                break
            except OSError:
                time.sleep(0.5)
        recs = [{k: v for k, v in r.items() if v == v and v is not None} for r in fresh.to_dict("records")]
        post(recs[:1])  # warm up (first request imports and plans)
        single = [post([r]) for r in recs[1 : 1 + n]]
        lat_conc, lock = [], threading.Lock()

        def client(part):
            for r in part:
                x = post([r])
                with lock:
                    lat_conc.append(x)

        per = max(1, n // 8)
        parts = [recs[1 + n + per * i : 1 + n + per * (i + 1)] for i in range(8)]
        threads = [threading.Thread(target=client, args=(p,)) for p in parts]
        t0 = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        conc_seconds = time.perf_counter() - t0
        start = 1 + n + 8 * per
        batches = [recs[start + 100 * i : start + 100 * (i + 1)] for i in range(10)]
        batch_times = [post(b) for b in batches if b]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
        log.close()
    n_batch = sum(len(b) for b in batches if b)
    return {
        "sequential_ms": {q: 1000 * pct(single, v) for q, v in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))},
        "concurrent_8_ms": {q: 1000 * pct(lat_conc, v) for q, v in (("p50", 0.5), ("p95", 0.95))},
        "concurrent_8_records_per_s": len(lat_conc) / conc_seconds,
        "batch_100_records_per_s": n_batch / sum(batch_times),
        "requests": {"sequential": len(single), "concurrent": len(lat_conc), "batches": len(batch_times)},
    }


# ---- 2. real data: agreement with batch ----------------------------------------------------------------
SCENARIOS = {
    "fec": ("settings/fec_candidate_dedupe.yaml", "year", lambda v: int(float(v)) <= 2012, "FEC 2008-2012, then 2014"),
    "nc": (
        "settings/nc_candidate_dedupe.yaml",
        "election_dt",
        lambda v: int(str(v)[-4:]) <= 2023,
        "NC filings 2020-2023, then 2024-2025",
    ),
}


def real(name: str, tmp: Path) -> dict:
    import pandas as pd

    import splink_er

    preset, column, early_if, title = SCENARIOS[name]
    settings_path = REPO / preset
    d = yaml.safe_load(settings_path.read_text())
    src = d["sources"][0]
    data = pd.read_csv(settings_path.parent / src["path"], dtype=str, keep_default_na=False).replace("", None)
    early_mask = data[column].map(early_if)
    early, late = data[early_mask], data[~early_mask]
    early.to_csv(tmp / "early.csv", index=False)
    data.to_csv(tmp / "union.csv", index=False)
    judge = {"kind": "truth", "max_pairs": 1_000_000}
    inc = dict(d, output_dir=str(tmp / "inc"), labels={"path": str(tmp / "inc/labels.jsonl")}, judge=judge)
    inc["sources"] = [dict(src, path=str(tmp / "early.csv"))]
    inc["entities"] = dict(d.get("entities") or {}, path=str(tmp / "inc/store.duckdb"))
    t0 = time.perf_counter()
    splink_er.run(inc, quiet=True)
    t_early = time.perf_counter() - t0
    model = str(tmp / "inc" / "model.json")
    t0 = time.perf_counter()
    done = splink_er.resolve(inc, {src["name"]: late}, quiet=True)
    t_resolve = time.perf_counter() - t0
    bat = dict(d, output_dir=str(tmp / "bat"), labels={"path": str(tmp / "bat/labels.jsonl")}, judge=judge, model=model)
    bat["sources"] = [dict(src, path=str(tmp / "union.csv"))]
    bat["entities"] = dict(d.get("entities") or {}, path=str(tmp / "bat/store.duckdb"))
    t0 = time.perf_counter()
    batch = splink_er.run(bat, quiet=True)
    t_batch = time.perf_counter() - t0

    from splink_er.entities.store import EntityStore

    reader = EntityStore.reader(tmp / "inc/store.duckdb")
    inc_members = reader.df("SELECT unique_id, entity_id FROM entity_store.membership")
    reader.con.close()
    batch_members = batch.clusters[["unique_id", "entity_id"]]
    truth = dict(zip(data[src["id_column"]], data[d["truth_column"]]))
    inc_pairs, bat_pairs = pairs_of(inc_members), pairs_of(batch_members)
    true_pairs = pairs_of(pd.DataFrame({"unique_id": list(truth), "entity_id": list(truth.values())}))
    both, either = inc_pairs & bat_pairs, inc_pairs | bat_pairs
    action = dict(zip(done.resolutions.unique_id, done.resolutions.action))
    late_ids = set(late[src["id_column"]])
    direct = set()
    for r in batch.decisions.query("final_match")[["unique_id_l", "unique_id_r"]].itertuples(index=False):
        direct.add(tuple(sorted((r.unique_id_l, r.unique_id_r))))
    diffs = []
    for a, b in sorted(either - both):
        side = "batch only" if (a, b) in bat_pairs else "incremental only"
        if "REVIEW" in (action.get(a), action.get(b)):
            reason = "a record held for review by the resolve (the batch decided it)"
        elif a not in late_ids and b not in late_ids and side == "batch only":
            reason = "two stored records the batch joined (the store keeps the early run's entities apart)"
        elif a not in late_ids and b not in late_ids:
            reason = "two stored records whose entities a new record merged (the batch kept them apart)"
        elif side == "batch only" and (a, b) not in direct:
            reason = "joined in the batch through a chain of other matches"
        elif side == "incremental only" and (a, b) not in direct:
            reason = "joined in the store through an entity the new record merged into"
        else:
            reason = "a pair decided differently"
        diffs.append({"pair": [a, b], "side": side, "reason": reason, "truth_same": truth.get(a) == truth.get(b)})
    reasons: dict[str, int] = {}
    for x in diffs:
        reasons[x["reason"]] = reasons.get(x["reason"], 0) + 1
    return {
        "title": title,
        "records": {"early": len(early), "late": len(late)},
        "seconds": {"early_run": t_early, "resolve": t_resolve, "batch_union": t_batch},
        "actions": done.counts(),
        "agreement": len(both) / len(either) if either else 1.0,
        "matched_pairs": {"incremental": len(inc_pairs), "batch": len(bat_pairs), "both": len(both)},
        "f1": {"incremental": f1(inc_pairs, true_pairs), "batch": f1(bat_pairs, true_pairs)},
        "differences": reasons,
        "difference_list": diffs,
    }


def pairs_of(members) -> set[tuple[str, str]]:
    out = set()
    for ids in members.groupby("entity_id")["unique_id"]:
        out.update(tuple(sorted(p)) for p in combinations(sorted(ids[1]), 2))
    return out


def f1(found: set, true: set) -> float:
    tp = len(found & true)
    return 2 * tp / (len(found) + len(true)) if found or true else 1.0


# ---- report -----------------------------------------------------------------------------------------------
def report(sim: list[dict], reals: dict, repeat: int) -> list[str]:
    lines = ["# Incremental resolution", ""]
    if sim:
        lines += [
            f"SIMULATED persons, judge none; medians of {repeat} alternating runs, each in a fresh process.",
            "",
            "| store | new records | resolve s | full re-run s | resolve / re-run | actions |",
            "|---|---|---|---|---|---|",
        ]
        for r in sim:
            for k, x in r["new"].items():
                acts = ", ".join(f"{a} {n:,}" for a, n in sorted(x["actions"].items()))
                lines.append(
                    f"| {r['records']:,} | {int(k):,} | {median(x['resolve_seconds']):.2f} | "
                    f"{median(x['rerun_seconds']):.1f} | {x['ratio']:.1%} | {acts} |"
                )
        big = max(sim, key=lambda r: r["records"])
        x = big["new"].get(1000) or big["new"].get("1000")
        if x:
            lines += ["", f"1,000 new against {big['records']:,}: {x['ratio']:.1%} of a full re-run; target <= 10% "
                      + ("met." if x["ratio"] <= 0.10 else "NOT met.")]  # fmt: skip
        for r in sim:
            sv = r.get("service")
            if not sv:
                continue
            lines += [
                "",
                f"Service (`splink-er serve`) on the {r['records']:,}-record store, judge excluded:",
                "",
                "| load | p50 ms | p95 ms | p99 ms | records/s |",
                "|---|---|---|---|---|",
                f"| one record at a time ({sv['requests']['sequential']}) | {sv['sequential_ms']['p50']:.0f} | "
                f"{sv['sequential_ms']['p95']:.0f} | {sv['sequential_ms']['p99']:.0f} | "
                f"{1000 / sv['sequential_ms']['p50']:.1f} |",
                f"| 8 concurrent clients, one record each ({sv['requests']['concurrent']}) | "
                f"{sv['concurrent_8_ms']['p50']:.0f} | {sv['concurrent_8_ms']['p95']:.0f} | | "
                f"{sv['concurrent_8_records_per_s']:.1f} |",
                f"| batches of 100 ({sv['requests']['batches']}) | | | | {sv['batch_100_records_per_s']:.1f} |",
                "",
                f"Targets: p95 <= 250 ms one at a time: {'met' if sv['sequential_ms']['p95'] <= 250 else 'NOT met'}; "
                f">= 100 records/s in batches of 100: {'met' if sv['batch_100_records_per_s'] >= 100 else 'NOT met'}.",
            ]
    if reals:
        lines += [
            "",
            "Real data: incremental (a run on the early records, then one resolve of the late ones) against one "
            "batch run over both with the early run's model frozen; the SIMULATED truth judge answers band pairs in "
            "both.",
            "",
            "| scenario | early / late records | resolve actions | matched pairs inc / batch | agreement | "
            "F1 inc | F1 batch |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in reals.values():
            acts = ", ".join(f"{a} {n:,}" for a, n in sorted(r["actions"].items()))
            m = r["matched_pairs"]
            lines.append(
                f"| {r['title']} | {r['records']['early']:,} / {r['records']['late']:,} | {acts} | "
                f"{m['incremental']:,} / {m['batch']:,} | {r['agreement']:.2%} | {r['f1']['incremental']:.4f} | "
                f"{r['f1']['batch']:.4f} |"
            )
        for r in reals.values():
            lines += ["", f"Differences, {r['title']} ({len(r['difference_list'])} pairs):"]
            lines += [f"- {n}: {why}" for why, n in sorted(r["differences"].items(), key=lambda kv: -kv[1])]
            for x in r["difference_list"][:10]:
                lines.append(
                    f"  - {x['pair'][0]} / {x['pair'][1]}: {x['side']}, {x['reason']} "
                    f"(same in truth: {'yes' if x['truth_same'] else 'no'})"
                )
        ok = all(
            r["agreement"] >= 0.995 and abs(r["f1"]["incremental"] - r["f1"]["batch"]) <= 0.005 for r in reals.values()
        )
        lines += ["", f"Targets (agreement >= 99.5%, F1 within 0.005): {'met' if ok else 'NOT met'}."]
    lines += ["", f"Machine: {machine()}."]
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--new", type=int, nargs="+", default=[1_000, 10_000])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-real", action="store_true")
    ap.add_argument("--requests", type=int, default=200, help="single-record requests to the service (0: none)")
    ap.add_argument("--real-only", action="store_true")
    ap.add_argument("--child", nargs="+")
    a = ap.parse_args()
    if a.child:
        kind, *args = a.child
        print(json.dumps((child_run if kind == "run" else child_resolve)(*args), default=float))
        return
    sim, reals = [], {}
    if not a.real_only:
        for size in a.sizes:
            with tempfile.TemporaryDirectory() as d:
                sim.append(simulated(size, a.new, a.repeat, a.requests, Path(d)))
    if not a.skip_real:
        for name in SCENARIOS:
            with tempfile.TemporaryDirectory() as d:
                reals[name] = real(name, Path(d))
                print(f"{name}: agreement {reals[name]['agreement']:.4f}", file=sys.stderr)
    write_results(
        "incremental",
        {"machine": machine(), "repeat": a.repeat, "simulated": sim, "real": reals},
        report(sim, reals, a.repeat),
    )


if __name__ == "__main__":
    main()

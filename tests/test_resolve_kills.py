"""A resolve killed with SIGKILL at random moments leaves the entity store exactly before or after, and the same
request sent again gives the same actions (own file: it runs beside the other resolve tests on two workers)."""

import json

import duckdb
import pandas as pd
import pytest
import yaml

import splink_er

pytestmark = pytest.mark.e2e


@pytest.fixture
def stored(stored_demo):
    """A batch run over 90% of the demo's records (judge none), and the other 10%, new ids."""
    return stored_demo("none")


def store_shape(path) -> dict:
    """What a resolve changes, independent of minted ids and run ids: the partition of records into active
    entities, and the row counts of every table. Opened read-write, as the next resolve opens it (DuckDB
    replays its write-ahead log)."""
    con = duckdb.connect(str(path))
    try:
        groups = con.execute(
            "SELECT list(source_dataset || ':' || unique_id) FROM membership GROUP BY entity_id"
        ).fetchall()
        counts = {
            t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
            for t in ("membership", "entities", "records", "events", "runs", "resolutions", '"values__fake_1000"')
        }
    finally:
        con.close()
    return {"partition": frozenset(frozenset(g[0]) for g in groups), **counts}


@pytest.mark.slow
def test_a_resolve_killed_at_random_moments_leaves_the_store_before_or_after_and_replays_the_same(stored, tmp_path):
    import random
    import shutil
    import signal
    import subprocess
    import sys
    import time

    d, first, later = stored
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(d))
    later.to_csv(tmp_path / "new.csv", index=False)
    store = splink_er.load_settings(d).entity_store_path
    pristine = tmp_path / "pristine.duckdb"
    shutil.copy(store, pristine)
    cmd = [sys.executable, "-m", "splink_er.cli", "resolve", str(path), str(tmp_path / "new.csv"), "--json", "-q"]
    cmd += ["--set", "judge.kind=none"]

    def restore():
        shutil.copy(pristine, store)
        store.with_name(store.name + ".wal").unlink(missing_ok=True)

    def actions(out: str) -> dict:
        rows = pd.read_parquet(json.loads(out.strip().splitlines()[-1])["resolutions"])
        return dict(zip(rows.unique_id, rows.action))

    before = store_shape(store)
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    whole = time.perf_counter() - t0
    assert done.returncode == 0, done.stderr
    after, reference = store_shape(store), actions(done.stdout)
    assert after != before and after["partition"] != before["partition"]
    rng = random.Random(20261201)
    seen = {"before": 0, "after": 0}
    for _ in range(5):
        restore()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.5 * whole, whole))  # the first half is starting Python and loading
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        shape = store_shape(store)
        assert shape in (before, after), "the store is between before and after"
        seen["before" if shape == before else "after"] += 1
        again = subprocess.run(cmd, capture_output=True, text=True)  # replaying the request
        assert again.returncode == 0, again.stderr
        assert store_shape(store) == after and actions(again.stdout) == reference
    assert seen["before"] >= 1  # the kills landed inside resolves (a kill after the end proves nothing)


@pytest.mark.slow
def test_a_service_killed_holding_the_store_leaves_it_whole_and_answers_the_same_after(stored, tmp_path):
    """`splink-er serve` keeps the store attached between requests (engine/warm.py), its last commits perhaps
    only in DuckDB's write-ahead log. Killed with SIGKILL between requests, the store holds what it answered;
    killed during a request, the store is before or after it; a new service answers a request sent again with
    the same actions and writes nothing. Shapes are compared with `splink-er resolve` of the same records."""
    import os
    import random
    import shutil
    import signal
    import subprocess
    import sys
    import threading
    import time
    import urllib.error

    from test_service import TOKEN, Client, free_port, records

    d, _, later = stored
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(d))
    store = splink_er.load_settings(d).entity_store_path
    first, second = later.iloc[:20], later.iloc[20:60]

    def restore(source):
        shutil.copy(source, store)
        store.with_name(store.name + ".wal").unlink(missing_ok=True)

    # The reference shapes: the CLI resolving the same batches on copies of the store.
    pristine = tmp_path / "pristine.duckdb"
    shutil.copy(store, pristine)
    shapes = []
    for i, batch in enumerate((first, second)):
        batch.to_csv(tmp_path / f"b{i}.csv", index=False)
        cli = [sys.executable, "-m", "splink_er.cli", "resolve", str(path), str(tmp_path / f"b{i}.csv"), "-q"]
        done = subprocess.run([*cli, "--set", "judge.kind=none"], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        shapes.append(store_shape(store))
    after_first, after_second = shapes
    restore(pristine)

    def start():
        port = free_port()
        cmd = [sys.executable, "-m", "splink_er.cli", "serve", str(path), "--port", str(port)]
        cmd += ["--idle-seconds", "600", "--set", "judge.kind=none"]
        env = {**os.environ, "SPLINK_ER_TOKEN": TOKEN}
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        client = Client(port)
        for _ in range(480):
            try:
                if client.call("GET", "/health")[0] == 200:
                    return proc, client
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.25)
        proc.kill()
        raise AssertionError("the service did not start")

    def answer(client, batch):
        status, body = client.call("POST", "/resolve", {"records": records(batch)})
        assert status == 200, body
        return {r["unique_id"]: r["action"] for r in body["resolutions"]}

    def kill(proc):
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    proc, client = start()
    actions = answer(client, first)
    kill(proc)  # between requests, the store attached and locked
    assert store_shape(store) == after_first

    proc, client = start()
    assert answer(client, first) == actions  # sent again: the same actions, and no write
    threading.Timer(random.Random(20261202).uniform(0.05, 0.5), proc.send_signal, [signal.SIGKILL]).start()
    try:
        client.call("POST", "/resolve", {"records": records(second)})
    except (urllib.error.URLError, ConnectionError):
        pass
    proc.wait()
    assert store_shape(store) in (after_first, after_second), "the store is between before and after"

    proc, client = start()
    assert set(answer(client, second)) == set(second["unique_id"])
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    assert store_shape(store) == after_second

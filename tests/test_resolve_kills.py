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

"""The HTTP service as a client meets it: a real `splink-er serve` process on 127.0.0.1, a real HTTP client
(urllib). Resolving, reading entities and changes, a bearer token, and malformed requests answered with a 4xx and a
message while the service keeps serving."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pandas as pd
import pytest
import yaml

import splink_er

pytestmark = pytest.mark.e2e

TOKEN = "test-token-not-a-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    def __init__(self, port: int, token: str | None = TOKEN) -> None:
        self.base, self.token = f"http://127.0.0.1:{port}", token

    def call(self, method: str, path: str, body=None, raw: bytes | None = None, token: str | None = "default"):
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("content-type", "application/json")
        token = self.token if token == "default" else token
        if token:
            req.add_header("authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """A batch run over 90% of the demo's records (judge none), then `splink-er serve` on its store; yields the
    client and the other 10% (new ids)."""
    tmp = tmp_path_factory.mktemp("service")
    path = splink_er.demo_settings_path()
    d = yaml.safe_load(path.read_text())
    rows = pd.read_csv(path.parent / d["sources"][0]["path"], dtype=str)
    later = rows.sample(frac=0.1, random_state=5)
    rows.drop(later.index).to_csv(tmp / "base.csv", index=False)
    d["sources"][0]["path"] = str(tmp / "base.csv")
    d.update(output_dir=str(tmp / "out"), labels={"path": str(tmp / "labels.jsonl")}, judge={"kind": "none"})
    (tmp / "s.yaml").write_text(yaml.safe_dump(d))
    splink_er.run(d, quiet=True)
    port = free_port()
    env = dict(os.environ, SPLINK_ER_TOKEN=TOKEN)
    cmd = [
        sys.executable,
        "-m",
        "splink_er.cli",
        "serve",
        str(tmp / "s.yaml"),
        "--port",
        str(port),
        "--max-batch",
        "50",
        "--idle-seconds",
        "1",
    ]
    log = open(tmp / "serve.log", "w")  # noqa: SIM115 - open for the server's lifetime
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    client = Client(port)
    for _ in range(120):
        try:
            if client.call("GET", "/health")[0] == 200:
                break
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.5)
    else:
        proc.kill()
        raise AssertionError("the service did not start:\n" + (tmp / "serve.log").read_text()[-3000:])
    later = later.assign(unique_id=[f"new-{i}" for i in range(len(later))])
    yield client, later, tmp
    proc.terminate()
    proc.wait(timeout=30)
    log.close()
    assert "Traceback" not in (tmp / "serve.log").read_text(), "the service logged a traceback"
    assert TOKEN not in (tmp / "serve.log").read_text()  # secrets never reach the log


def records(df: pd.DataFrame) -> list[dict]:
    return [
        {k: (None if pd.isna(v) else v) for k, v in r.items()} for r in df.drop(columns="cluster").to_dict("records")
    ]


def test_resolve_read_the_entity_and_the_changes_and_resolve_again_the_same(service):
    client, later, _ = service
    status, health = client.call("GET", "/health")
    assert status == 200 and health["entities"] > 0 and len(health["model"]["sha256"]) == 64
    batch = records(later.head(20))
    status, done = client.call("POST", "/resolve", {"records": batch})
    assert status == 200, done
    rows = done["resolutions"]
    assert [r["unique_id"] for r in rows] == sorted(r["unique_id"] for r in batch)
    assert {r["action"] for r in rows} <= {"MERGE", "REVIEW", "INSERT"} and "MERGE" in {r["action"] for r in rows}
    merged = next(r for r in rows if r["action"] == "MERGE")
    assert merged["candidates"][0]["entity_id"] == merged["entity_id"] and merged["decided_by"]
    # The entity it joined, with the new record among its records and values.
    status, entity = client.call("GET", f"/entities/{merged['entity_id']}")
    assert status == 200 and entity["status"] == "active" and entity["records"] >= 2
    status, members = client.call("GET", f"/entities/{merged['entity_id']}/records")
    assert merged["unique_id"] in {r["unique_id"] for r in members["records"]}
    assert all("first_name" in r for r in members["records"])
    # The change feed: this resolve's events after the run before it.
    status, feed = client.call("GET", f"/changes?since={health['last_run']}")
    assert status == 200 and feed["runs"] == [done["run_id"]]
    added = {e["unique_id"] for e in feed["events"] if e["event"] == "record_added"}
    assert added == {r["unique_id"] for r in rows if r["action"] != "REVIEW"}
    assert feed["next"] is None and not feed["truncated"]
    # In pages of 3: every event once, in the same order, the last page without a next.
    paged, after = [], ""
    while True:
        status, page = client.call("GET", f"/changes?since={health['last_run']}&limit=3{after}")
        assert status == 200 and len(page["events"]) <= 3
        paged += page["events"]
        if page["next"] is None:
            break
        after = f"&after={page['next']}"
    assert [(e["run_id"], e["seq"]) for e in paged] == [(e["run_id"], e["seq"]) for e in feed["events"]]
    assert len(paged) > 3
    # The same request again: the same actions and entities, nothing new in the store.
    status, again = client.call("POST", "/resolve", {"records": batch})
    assert status == 200
    first = {r["unique_id"]: (r["action"], r["entity_id"]) for r in rows if r["action"] != "REVIEW"}
    assert {
        r["unique_id"]: (r["action"], r["entity_id"]) for r in again["resolutions"] if r["unique_id"] in first
    } == first
    assert client.call("GET", f"/changes?since={done['run_id']}")[1]["events"] == []


def test_malformed_requests_get_a_4xx_and_a_message_and_the_service_keeps_serving(service):
    client, later, _ = service
    good = records(later.tail(3))
    one = good[0]
    cases = {
        "not JSON": ("POST", "/resolve", None, b"{records: nope"),
        "a list, not an object": ("POST", "/resolve", [one], None),
        "no records field": ("POST", "/resolve", {"rows": [one]}, None),
        "records not a list": ("POST", "/resolve", {"records": "abc"}, None),
        "a nested value": ("POST", "/resolve", {"records": [dict(one, city={"a": 1})]}, None),
        "an unknown column": ("POST", "/resolve", {"records": [dict(one, shoe_size="9")]}, None),
        "no id": ("POST", "/resolve", {"records": [{k: v for k, v in one.items() if k != "unique_id"}]}, None),
        "a null id": ("POST", "/resolve", {"records": [dict(one, unique_id=None)]}, None),
        "an id twice": ("POST", "/resolve", {"records": [one, one]}, None),
        "an unknown source": ("POST", "/resolve", {"source": "crm", "records": [one]}, None),
        "no record": ("POST", "/resolve", {"records": []}, None),
        "too many records": ("POST", "/resolve", {"records": [dict(one, unique_id=f"x{i}") for i in range(51)]}, None),
        "an unknown field": ("POST", "/resolve", {"records": [one], "mode": "fast"}, None),
        "NaN": ("POST", "/resolve", None, b'{"records": [{"unique_id": "n1", "first_name": NaN}]}'),
        "an unknown entity": ("GET", "/entities/no-such-entity", None, None),
        "an unknown run": ("GET", "/changes?since=no-such-run", None, None),
        "a bad limit": ("GET", "/changes?limit=0", None, None),
        "a cursor that is not one": ("GET", "/changes?after=nothing", None, None),
        "a cursor of other changes": ("GET", "/changes?after=no-such-run:3", None, None),
        "a wrong method": ("GET", "/resolve", None, None),
    }
    for what, (method, path, body, raw) in cases.items():
        status, answer = client.call(method, path, body, raw)
        assert 400 <= status < 500, (what, status, answer)
        message = answer.get("error") or answer.get("detail")
        assert isinstance(message, str) and len(message) > 5, (what, answer)
    assert client.call("GET", "/health", token=None)[0] == 401
    assert client.call("GET", "/health", token="wrong")[0] == 403
    # Still serving, and a good request still works.
    assert client.call("GET", "/health")[0] == 200
    status, done = client.call("POST", "/resolve", {"records": good})
    assert status == 200 and len(done["resolutions"]) == 3


def test_the_service_holds_the_store_while_busy_and_lets_a_batch_run_have_it_when_idle(service):
    """Between requests the service keeps the store attached and locked (engine/warm.py); --idle-seconds after the
    last request another process can take it, and while that process holds it a resolve gets 503, then 200."""
    from splink_er.errors import Busy
    from splink_er.locks import hold

    client, later, tmp = service
    store = splink_er.load_settings(tmp / "s.yaml").entity_store_path
    assert client.call("POST", "/resolve", {"records": records(later.iloc[30:31])})[0] == 200
    with pytest.raises(Busy):  # just after a request: the service holds it
        hold(store, "entity store", 0)
    time.sleep(2.5)
    assert client.call("GET", "/health")[0] == 200  # a read neither takes the store nor holds it longer
    lock = hold(store, "entity store", 0)  # idle: free for a batch run
    try:
        assert client.call("GET", "/health")[0] == 200  # reads go on (the file read-only, no lock)
        status, body = client.call("POST", "/resolve", {"records": records(later.iloc[31:32])})
        assert status == 503 and "entity store" in body["error"]
    finally:
        lock.release()
    assert client.call("POST", "/resolve", {"records": records(later.iloc[31:32])})[0] == 200

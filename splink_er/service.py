"""The HTTP service: resolve records as they arrive, read entities and the change feed (`splink-er serve`).

    pip install 'splink-er[serve]'
    splink-er serve settings/fec_candidate_dedupe.yaml --port 8000

Endpoints (JSON):
    POST /resolve                {"source": optional, "records": [{column: value, ...}, ...]} -> one action per
                                 record (MERGE / REVIEW / INSERT, entity_id, candidates, how it was decided)
    GET  /entities/{id}          the entity, the entity it now belongs to (after a merge), its counts
    GET  /entities/{id}/records  its records with their stored values
    GET  /changes?since=RUN      the events of every run committed after RUN (default: the latest run's), in pages
                                 of `limit`: the answer's `next` is the `after` of the next page
    GET  /health                 store, model and counts

The settings and Splink's settings are loaded once, one DuckDB database serves every resolve (cleaned after
each, engine/warm.py), and Splink's predict SQL is recorded on the first resolve and replayed after
(engine/recorded_predict.py); each resolve is `resolving.resolve` on them, so a record resolved here and one
resolved by `splink-er resolve` get the same answer. At start the store is indexed for lookups
(entities/serving_indexes.py), and while resolves keep coming it stays attached, its file lock held, until
`idle_seconds` after the last one; reads never take it. Requests that touch the store run one at a time (DuckDB
has one writer; a batch run started meanwhile waits for the file lock as long as its labels.wait_seconds allows,
and a resolve arriving during a batch run gets 503 with Retry-After). Bound to 127.0.0.1 unless told otherwise;
when the environment variable named by `--token-env` (default SPLINK_ER_TOKEN) is set, every request needs
`Authorization: Bearer <token>`. A malformed request gets a 4xx and a message that says what to change; it never
stops the service.
"""

import contextlib
import hashlib
import hmac
import json
import logging
import math
import os
import threading
from pathlib import Path
from typing import Any

from .errors import Busy, DependencyMissing, InputError, SplinkERError

TOKEN_ENV = "SPLINK_ER_TOKEN"
MAX_BATCH = 1000
MAX_BODY_BYTES = 8 * 1024 * 1024
IDLE_SECONDS = 5.0  # the store stays attached this long after a request, then other processes may write it
log = logging.getLogger("splink_er.service")
NEEDS_EXTRA = "the service needs FastAPI and uvicorn: pip install 'splink-er[serve]'"


def create_app(
    settings,
    overrides: list[str] | None = None,
    *,
    token_env: str = TOKEN_ENV,
    max_batch: int = MAX_BATCH,
    judge=None,
    idle_seconds: float = IDLE_SECONDS,
):
    """The FastAPI application for one job's entity store (see the module docstring)."""
    try:
        from fastapi import FastAPI, Request
        from fastapi.exceptions import RequestValidationError
        from fastapi.responses import JSONResponse
        from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr
    except ImportError:
        raise DependencyMissing(NEEDS_EXTRA) from None

    from .engine.warm import WarmConnection
    from .entities import serving_indexes
    from .entities.store import ALIAS as STORE_ALIAS
    from .entities.store import EntityStore
    from .resolving import check_resolvable, input_columns
    from .settings import load_settings

    s = load_settings(settings, overrides)
    model_path = check_resolvable(s)  # fail at start, not on the first request
    columns = {src.name: input_columns(s, src) for src in s.sources}
    id_columns = {src.name: src.id_column for src in s.sources}
    store_lock = threading.Lock()  # one request at a time touches the store (DuckDB: one writer per file)

    # One DuckDB database for every request, cleaned after each (under store_lock), with the store kept attached
    # while requests keep coming (engine/warm.py), and indexed for lookups (entities/serving_indexes.py).
    def attach_store(con) -> None:
        """The store attached (EntityStore says Busy when another process has the file) with its missing serving
        indexes built, each time it is attached: a batch run or `entities index --drop` may have removed them
        meanwhile (about 7 s at 1M records; a catalog read when they are there)."""
        EntityStore(con, s.entity_store_path)
        built = serving_indexes.ensure(con, STORE_ALIAS)
        if built:
            log.info("indexed the entity store for serving: %s", ", ".join(built))

    warm = WarmConnection(
        keep=(STORE_ALIAS, s.entity_store_path),
        idle_seconds=idle_seconds,
        wait_seconds=s.labels.wait_seconds,
        attach=attach_store,
    )
    with store_lock:
        try:
            with warm.use():  # indexed now, not at the first request
                pass
        except Busy:  # a batch run holds the store: the service starts, and indexes at its first request
            log.warning("the entity store is busy (a batch run?): it is indexed at the first request")

    Value = StrictStr | StrictInt | StrictFloat | StrictBool | None

    class ResolveRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        source: str | None = Field(None, description="The source the records belong to (default: the first).")
        records: list[dict[str, Value]] = Field(..., description="Records with the columns of the source's input.")

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        warm.release()  # detached and unlocked when the service stops, not when the process dies
        warm.close()

    app = FastAPI(title="splink_er", description=f"Entity resolution service for {s.name}.", lifespan=lifespan)

    def error(status: int, message: str, headers: dict | None = None):
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    @app.middleware("http")
    async def guard(request: Request, call_next):
        expected = os.environ.get(token_env)
        if expected:
            given = request.headers.get("authorization", "")
            if not given.lower().startswith("bearer "):
                return error(401, f"send Authorization: Bearer <token> (the token in ${token_env})")
            if not hmac.compare_digest(given[7:].strip().encode(), expected.encode()):
                return error(403, "the bearer token is not the one this service was started with")
        size = request.headers.get("content-length")
        if size and size.isdigit() and int(size) > MAX_BODY_BYTES:
            return error(413, f"request body over {MAX_BODY_BYTES:,} bytes: send fewer records per request")
        return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        problems = []
        for e in exc.errors():
            where = ".".join(str(p) for p in e.get("loc", ()) if p != "body")
            problems.append(f"{where or 'body'}: {e.get('msg')}")
        return error(422, "invalid request: " + "; ".join(problems[:5]) + (" ..." if len(problems) > 5 else ""))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):  # a bug, not a bad request: say so, keep serving
        return error(500, f"internal error ({type(exc).__name__}); the service keeps running, see its log")

    def frame(body: ResolveRequest):
        import pandas as pd

        name = body.source or s.sources[0].name
        if name not in columns:
            raise InputError(f"no source {name!r}; the sources are {list(columns)}")
        if not body.records:
            raise InputError("records is empty: send at least one record")
        if len(body.records) > max_batch:
            raise OverflowError(f"{len(body.records):,} records in one request; at most {max_batch:,} (--max-batch)")
        id_col, allowed = id_columns[name], set(columns[name])
        ids = []
        for i, rec in enumerate(body.records):
            unknown = sorted(set(rec) - allowed)
            if unknown:
                raise InputError(f"records[{i}] has column(s) {unknown} that source {name!r} does not have; "
                                 f"its columns: {sorted(allowed)}")  # fmt: skip
            if rec.get(id_col) in (None, ""):
                raise InputError(f"records[{i}] has no {id_col!r}: every record needs its id")
            for k, v in rec.items():
                if isinstance(v, float) and not math.isfinite(v):
                    raise InputError(f"records[{i}].{k} is {v}: send a number, a string or null")
            ids.append(_text(rec[id_col]))
        if len(set(ids)) != len(ids):
            dup = sorted({x for x in ids if ids.count(x) > 1})[:3]
            raise InputError(f"{id_col!r} repeats within the request ({dup}): send each record once")
        rows = [{c: (None if rec.get(c) is None else _text(rec.get(c))) for c in columns[name]} for rec in body.records]
        return name, pd.DataFrame(rows, columns=columns[name], dtype=object)

    @app.post("/resolve")
    def resolve_records(body: ResolveRequest):
        from .resolving import resolve

        try:
            name, df = frame(body)
        except OverflowError as e:
            return error(413, str(e))
        except InputError as e:
            return error(422, str(e))
        with store_lock:
            try:
                done = resolve(s, {name: df}, judge=judge, quiet=True, warm=warm)
            except Busy as e:
                return error(503, str(e), {"Retry-After": "5"})
            except InputError as e:
                return error(422, str(e))
            except SplinkERError as e:
                return error(500, f"{e.title}: {e}")
        rows = json.loads(done.resolutions.to_json(orient="records", date_format="iso"))
        return {"run_id": done.run_id, "counts": done.counts(), "resolutions": rows}

    def reading(fn):
        """`fn(store)`: on the store the service holds while it holds it, else opened read-only for this read
        alone (no file lock taken, the idle time not extended: reads never hold a batch run off)."""
        with store_lock:
            with warm.peek() as con:
                if con is not None:
                    return fn(EntityStore(con, s.entity_store_path))
            try:
                store = EntityStore.reader(s.entity_store_path)
            except SplinkERError as e:  # a batch run holds the file, or it went away: not the caller's fault
                return error(503, str(e), {"Retry-After": "5"})
            try:
                return fn(store)
            finally:
                store.con.close()

    def reading_entity(entity_id: str, fn):
        """`fn(store, found)` for an entity the store holds (`EntityStore.entity`), else 404."""

        def read(store):
            try:
                found = store.entity(entity_id)
            except InputError:
                return error(404, f"no entity {entity_id!r}")
            return fn(store, found)

        return reading(read)

    @app.get("/entities/{entity_id}")
    def entity(entity_id: str):
        def read(store, found):
            row = _plain(found["entity"])
            return {**row, "now": found["now"], "records": len(found["records"]), "events": len(found["events"])}

        return reading_entity(entity_id, read)

    @app.get("/entities/{entity_id}/records")
    def entity_records(entity_id: str):
        def read(store, found):
            members = found["records"]
            out = []
            for name in sorted(set(members["source_dataset"])):
                ids = members.loc[members["source_dataset"] == name, "unique_id"].tolist()
                if store.has_values(name):
                    values = store.df(f"SELECT * FROM {store.values_table(name)} WHERE unique_id IN ?", [ids])
                    out += [_plain(r) for r in values.to_dict("records")]
                else:
                    out += [{"source_dataset": name, "unique_id": i} for i in ids]
            return {"entity_id": entity_id, "now": found["now"], "records": out}

        return reading_entity(entity_id, read)

    @app.get("/changes")
    def changes(since: str | None = None, limit: int = 10_000, after: str | None = None):
        """Events in commit order; more than `limit` of them come in pages: pass the answer's `next` as `after`
        (with the same `since`) until `next` is null."""
        if not 1 <= limit <= 100_000:
            return error(422, "limit must be between 1 and 100000")
        cursor = None
        if after is not None:
            run_id, _, seq = after.rpartition(":")
            if not run_id or not seq.isdigit():
                return error(422, f"after={after!r} is not a cursor: pass the `next` of the previous answer")
            cursor = (run_id, int(seq))

        def read(store):
            runs = store.runs()
            if runs.empty:
                return {"runs": [], "events": [], "truncated": False, "next": None}
            if since is None:
                later = runs.iloc[[-1]]
            elif since not in set(runs["run_id"]):
                return error(404, f"no run {since!r} in the store; GET /changes without since gives the latest")
            else:
                later = runs[runs["time"] > runs.loc[runs["run_id"] == since, "time"].iloc[0]]
            ids = later["run_id"].tolist()
            pages, skip = ids, ("", 0)
            if cursor is not None:
                if cursor[0] not in ids:
                    return error(422, f"after={after!r} is not a cursor of these changes (since={since!r})")
                pages, skip = ids[ids.index(cursor[0]) :], cursor  # runs from the cursor's on, its events after it
            events = store.df(
                f"""SELECT * FROM {store.table("events")} WHERE run_id IN ? AND NOT (run_id = ? AND seq <= ?)
                    ORDER BY time, run_id, seq LIMIT ?""",
                [pages or [""], skip[0], skip[1], limit + 1],
            )
            page = events.head(limit)
            more = len(events) > limit
            return {
                "runs": ids,
                "events": [_plain(r) for r in page.to_dict("records")],
                "truncated": more,
                "next": f"{page['run_id'].iloc[-1]}:{int(page['seq'].iloc[-1])}" if more else None,
            }

        return reading(read)

    @app.get("/health")
    def health():
        def read(store):
            counts = store.df(f"""
                SELECT (SELECT count(*) FROM {store.table("entities")} WHERE status = 'active') AS entities,
                       (SELECT count(*) FROM {store.table("membership")}) AS records,
                       (SELECT max_by(run_id, time) FROM {store.table("runs")}) AS last_run""")
            return {
                "status": "ok",
                "job": s.name,
                "store": str(s.entity_store_path),
                "model": {"path": str(model_path), "sha256": _sha256(model_path)},
                **_plain(counts.iloc[0].to_dict()),
            }

        return reading(read)

    return app


def serve(
    settings, overrides=None, *, host="127.0.0.1", port=8000, token_env=TOKEN_ENV, max_batch=MAX_BATCH,
    idle_seconds=IDLE_SECONDS,
):  # fmt: skip
    """Run the service until stopped (Ctrl-C)."""
    try:
        import uvicorn
    except ImportError:
        raise DependencyMissing(NEEDS_EXTRA) from None
    app = create_app(settings, overrides, token_env=token_env, max_batch=max_batch, idle_seconds=idle_seconds)
    # One worker process: the store has one writer, and the warm state lives in this process.
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=True)


def _text(v: Any) -> str:
    """A JSON value as the text a CSV would hold (a run reads every input column as text)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _plain(row: dict) -> dict:
    """JSON-ready values (timestamps as ISO text, NaN and NaT as null)."""
    out = {}
    for k, v in row.items():
        if v is None or (isinstance(v, float) and v != v):
            out[k] = None
        elif hasattr(v, "isoformat"):
            out[k] = None if str(v) == "NaT" else v.isoformat()
        elif hasattr(v, "item"):  # numpy scalars
            out[k] = v.item()
        else:
            out[k] = v
    return out


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()

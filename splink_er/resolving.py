"""Resolve new records as they arrive: MERGE into one stored entity, send to REVIEW, or INSERT a new entity.

A batch run re-blocks and re-scores everything; a resolve touches only what the new records touch:
1. the new records are normalized exactly as a run normalizes them (the same Session and settings);
2. a record sent again unchanged (same id, same content) keeps what it got (idempotent); a changed one is
   resolved again;
3. stored records that pass a blocking rule with a new record (the store keeps every record's normalized values,
   `entities.keep_values`) are the candidates; Splink scores new x candidates and new x new with the frozen model
   (`model:`, default the output directory's model.json) and term frequencies from the whole store;
4. pairs are routed as a run routes them (labels, gates, thresholds, the band to the judge within its budget);
5. new records joined by accepted pairs decide together: accepted into exactly one stored entity -> MERGE;
   into none -> INSERT (one new entity); into two or more -> MERGE into the oldest, the others merged into it
   as a run over all the records would (`entities.bridges: merge`, a `merged` event) or REVIEW
   (`bridges: review`); with a pair left in the band unjudged (needs_review) that reaches another entity (or
   another new group) than the accepted pairs chose -> REVIEW (nothing joins; the pairs go to a review file, a
   person answers, `splink-er review import`, then the record is sent again); a band pair to the same entity
   changes nothing and is no reason to ask. `note` says why a record waits or what it joined;
6. the store changes in one transaction (membership, new entities, events, the records' values, the
   resolutions), and resolutions.parquet says per record what was done, with the candidates and the evidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .entities import blocking_keys, serving_indexes
from .entities.ids import mint_ids
from .entities.stable_ids import Plan, content_hash_sql, strongest_pairs_sql
from .entities.store import ALIAS as STORE_ALIAS
from .entities.store import EVENT_COLUMNS, EntityStore
from .errors import InputError, SettingsError
from .model import required_columns, splink_settings_dict
from .outputs import RunDirectory
from .pairs import PAIR_KEY, pair_keys
from .settings import Settings, load_settings
from .sql import columns_in_sql, drop_relation, quote_ident, registered, sql_literal

ACTIONS = ("MERGE", "REVIEW", "INSERT")
KEY = ["source_dataset", "unique_id"]
KEYS = ", ".join(KEY)
SENT = "SELECT source_dataset, unique_id FROM res_sent"
IN_DECISIONS = """
    SELECT source_dataset_l AS source_dataset, unique_id_l AS unique_id FROM res_decisions
    UNION SELECT source_dataset_r, unique_id_r FROM res_decisions"""


@dataclass
class ResolveResult:
    """What a resolve did: one row per record sent (`resolutions`), and where that table was written."""

    run_id: str
    resolutions: pd.DataFrame
    path: Path | None
    review: Path | None = None  # the review file of the pairs that hold REVIEW records (None when there is none)

    def counts(self) -> dict[str, int]:
        return self.resolutions["action"].value_counts().to_dict()


def resolve(
    settings, data, *, overrides: list[str] | None = None, judge=None, quiet: bool = True, out=None, warm=None
) -> ResolveResult:
    """Resolve the records in `data` ({source name: DataFrame}, or one DataFrame for the first source) against
    the entity store of `settings`. See the module docstring. `warm`: an `engine.warm.WarmConnection` to resolve
    on (the service's; cleaned after), instead of a new DuckDB database.

    Example:
        >>> import splink_er, pandas as pd
        >>> o = ["output_dir=/tmp/se_resolve", "labels.path=/tmp/se_resolve/labels.jsonl", "judge.kind=none"]
        >>> _ = splink_er.run(splink_er.demo_settings_path(), overrides=o, quiet=True)
        >>> rows = pd.read_csv(splink_er.demo_settings_path().parent / "fake_1000.csv", dtype=str).head(2)
        >>> rows["unique_id"] = ["new-1", "new-2"]
        >>> done = splink_er.resolve(splink_er.demo_settings_path(), rows, overrides=o)
        >>> sorted(done.resolutions["action"])   # both are copies of stored people
        ['MERGE', 'MERGE']
    """
    s = _with_frozen_model(load_settings(settings, overrides))
    # A resolve's pairs are few: tables in memory, not Parquet files in a scratch folder (and Splink's predict
    # SQL can then be replayed, engine/recorded_predict.py).
    s = s.model_copy(update={"engine": s.engine.model_copy(update={"materialisation": "table"})})
    check_resolvable(s)  # before any record is loaded
    if warm is not None:
        with warm.use() as con:
            return _resolve_on(s, data, judge, quiet, out, con, keep_store=warm.keeps(STORE_ALIAS))
    return _resolve_on(s, data, judge, quiet, out, None)


def _resolve_on(s: Settings, data, judge, quiet: bool, out, con, keep_store: bool = False) -> ResolveResult:
    from .job import Job

    job = Job(s, data=_as_sources(s, data), judge=judge, quiet=quiet, allow_empty=True, con=con)
    try:
        return Resolver(job).run(out)
    finally:
        # The store file is free again only once no connection holds it: a resolve (or a failed resolve's
        # traceback, kept alive) must not keep it attached, unless a warm connection keeps it between requests
        # on purpose (engine/warm.py). Then the locks go.
        if not keep_store:
            job.session.con.execute(f"DETACH DATABASE IF EXISTS {STORE_ALIAS}")
        if con is None:
            job.session.con.close()
        job.close()


def _with_frozen_model(s: Settings) -> Settings:
    if s.model:
        return s
    published = RunDirectory(s.output_path) / RunDirectory.model
    if not published.exists():
        raise SettingsError(
            f"resolve scores with a trained model: set model: (a model.json, or `splink-er model export`), or run "
            f"`splink-er run` first so that {published} exists"
        )
    return s.model_copy(update={"model": str(published)})


def check_resolvable(s: Settings) -> Path:
    """Raise the error a resolve would raise before loading anything (no model, no store, Spark); returns the
    model file a resolve scores with."""
    s = _with_frozen_model(s)
    if s.engine.kind != "duckdb":
        raise SettingsError("resolve runs on DuckDB: use engine.kind=duckdb (a resolve is small)")
    if not s.entities.enabled or not s.entity_store_path.exists():
        raise InputError(f"no entity store at {s.entity_store_path}: run `splink-er run` with these settings first")
    return Path(s.model)


def input_columns(s: Settings, src) -> list[str]:
    """The columns a new record of `src` may have: its input file's header when the file is there, and every raw
    column the settings read (the id, what prepare steps and derive read, the matched columns)."""
    from .sources import file_columns

    path = s.input_path(src)
    header = file_columns(src, path) if path is not None and path.is_file() else []
    needed = required_columns(s, splink_settings_dict(s)) | set(s.columns_to_keep)
    made = set(src.derive) | {c for step in src.prepare for c in _outputs(step)}
    raw = {src.id_column} | {c for step in src.prepare for c in step.inputs}
    raw |= set().union(*(columns_in_sql(sql) for sql in src.derive.values())) if src.derive else set()
    raw |= (needed - made) | {t for t in (s.truth_column,) if t}
    raw -= made | {"unique_id", "source_dataset"} - {src.id_column}
    return header + sorted(raw - set(header))


def _as_sources(s: Settings, data) -> dict[str, pd.DataFrame]:
    """{source: DataFrame} with every source present (an empty frame with its input columns where no record
    arrives)."""
    if isinstance(data, pd.DataFrame):
        data = {s.sources[0].name: data}
    names = [src.name for src in s.sources]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise InputError(f"records for {unknown}: no such source; the sources are {names}")
    if not any(len(df) for df in data.values()):
        raise InputError("no record to resolve")
    return {
        src.name: data[src.name]
        if src.name in data
        else pd.DataFrame({c: pd.Series(dtype=str) for c in input_columns(s, src)})
        for src in s.sources
    }


NEW_RECORD = "splink_er_new_record"  # the inputs' column that marks the records being resolved (not candidates)


def _pairs_with_a_new_record(model: dict) -> dict:
    """The model with each blocking rule narrowed to pairs with a new record (the inputs' NEW_RECORD column): the
    candidates among themselves are not this resolve's business, and were 98% of the pairs Splink compared for
    100 new records against a 1M-record store. Scores of the pairs kept are unchanged (blocking decides which
    pairs, never their comparison), and the SQL text stays the same from request to request, so it is replayed.
    A column, not `unique_id IN (new records)`: Splink repeats each rule in the next ones' exclusions, and 28 such
    subqueries made a one-record resolve's blocking 67 ms instead of 17."""
    either = f"(l.{NEW_RECORD} OR r.{NEW_RECORD})"
    rules = [
        {**rule, "blocking_rule": f"({rule['blocking_rule']}) AND {either}"}
        for rule in model["blocking_rules_to_generate_predictions"]
    ]
    kept = [c for c in model.get("additional_columns_to_retain", []) if c != NEW_RECORD] + [NEW_RECORD]
    return {**model, "blocking_rules_to_generate_predictions": rules, "additional_columns_to_retain": kept}


def _outputs(step) -> list[str]:
    """The columns a step makes (a clean step rewriting its own column makes none: the record must bring it)."""
    from .normalize import normalizer_for

    return [c for c in normalizer_for(step).output_columns() if c != step.column]


class Resolver:
    """One resolve on a job whose inputs are the new records (see the module docstring)."""

    def __init__(self, job) -> None:
        self.job, self.session = job, job.session
        self.con = job.session.con
        s = self.session.settings
        self.store = EntityStore(self.con, s.entity_store_path)
        serving_indexes.for_lookups(self.con)
        missing = [src for src in self.session.loaded.tables if not self.store.has_values(src)]
        if missing:
            raise InputError(
                f"the store keeps no record values for {missing} (entities.keep_values was off): run "
                "`splink-er run` with entities.keep_values: true first"
            )

    def run(self, out) -> ResolveResult:
        s, job = self.session, self.job
        with s.clock.stage("resolve"):
            known = self._set_aside_known()
            n_new = self.con.execute("SELECT count(*) FROM res_new_keys").fetchall()[0][0]
            if n_new:
                self._add_candidates()
                self._show_candidates_to_simulated_judge()
                self._term_frequencies()
                job.session.backend.replay_predict = True
                job.bootstrap()
                self._score()
                job.route()
                job.judge_band()
                job.inference.decide(1)
                # Read five times from here on, and a view over the routed pairs: once into a table (the events
                # alone took 20 ms over the view for one record).
                self.con.execute(
                    f"CREATE OR REPLACE TEMP TABLE res_decisions AS SELECT * FROM {job.inference.decisions.name}"
                )
                self._actions()
                plan = self._plan()
                if _changes_anything(self.con, plan):  # a request sent again writes nothing
                    self.store.commit(s.run_id, plan)
            resolutions = self._resolutions(known, n_new)
        path = self._write(resolutions, out)
        review = self._write_review(path) if n_new and (resolutions["action"] == "REVIEW").any() else None
        counts = resolutions["action"].value_counts().to_dict()
        s.reporter.info(
            f"resolved {len(resolutions):,} records: "
            + ", ".join(f"{a} {counts.get(a, 0):,}" for a in ACTIONS)
            + (f" ({len(known):,} sent before, unchanged)" if len(known) else "")
            + (f"; {path}" if path else "")
            + (f"; pairs to review in {review} (answer, `splink-er review import`, send again)" if review else "")
        )
        return ResolveResult(s.run_id, resolutions, path, review)

    # ---- the records --------------------------------------------------------------------------------
    def _set_aside_known(self) -> pd.DataFrame:
        """Records sent before with the same content that already belong to an entity: they keep it (no work,
        no write). Returns them with their earlier action; the rest are `res_new_keys`."""
        con, loaded = self.con, self.session.loaded.tables
        con.execute(
            "CREATE OR REPLACE TEMP TABLE res_sent AS "
            + " UNION ALL ".join(content_hash_sql(t) for t in loaded.values())
        )
        # The store's rows of the records sent, read once (EntityStore.rows_of): the rest of the resolve reads these.
        rec, mem, _ = (self.store.rows_of(t, SENT, f"res_sent_{t}") for t in ("records", "membership", "resolutions"))
        # A record still waiting for review is never "known": it is resolved again (answers may have come).
        known = con.execute(f"""
            WITH latest AS ({self._latest_resolutions_sql()})
            SELECT s.source_dataset, s.unique_id, coalesce(l.action, 'MERGE') AS action, m.entity_id
            FROM res_sent s JOIN {rec} r USING (source_dataset, unique_id)
            JOIN {mem} m USING (source_dataset, unique_id)
            LEFT JOIN latest l USING (source_dataset, unique_id)
            WHERE r.content_hash = s.content_hash AND r.gone_run IS NULL
                AND l.action IS DISTINCT FROM 'REVIEW'""").df()
        with registered(con, "res_known_df", known[KEY]):
            con.execute(
                "CREATE OR REPLACE TEMP TABLE res_new_keys AS SELECT * FROM res_sent ANTI JOIN res_known_df USING (source_dataset, unique_id)"
            )
            for table in loaded.values():  # the inputs keep only the records to resolve
                con.execute(
                    f"DELETE FROM {table} t USING res_known_df k WHERE t.source_dataset = k.source_dataset AND t.unique_id = k.unique_id"
                )
        return known

    def _latest_resolutions_sql(self) -> str:
        """Each sent record's latest resolution (action, entity_id, content_hash), in commit order (run ids are
        only to the second)."""
        runs = self.store.table("runs")
        return f"""
            SELECT x.source_dataset, x.unique_id, max_by(x.action, r.time) AS action,
                max_by(x.entity_id, r.time) AS entity_id, max_by(x.content_hash, r.time) AS content_hash
            FROM res_sent_resolutions x JOIN {runs} r USING (run_id) GROUP BY ALL"""

    def _add_candidates(self) -> None:
        """Stored records that pass a blocking rule with a new record join the inputs (SQL rules both ways
        round); a stored record sent again changed is replaced by its new version."""
        con, s = self.con, self.session.settings
        loaded = self.session.loaded.tables
        for name, table in loaded.items():
            con.execute(f"CREATE OR REPLACE TEMP TABLE res_new_{name} AS SELECT * FROM {table}")
        # (SQL, its equal columns or None): a rule of equal columns reads the same both ways round, so it is
        # joined once, and on the store's hashed keys of those columns where it keeps them (blocking_keys.py).
        rules = [
            (" AND ".join(f"l.{quote_ident(c)} = r.{quote_ident(c)}" for c in rule), list(rule))
            if isinstance(rule, list)
            else (rule, None)
            for rule in s.blocking_rules
        ]
        new_types = {n: blocking_keys.table_columns(con, "temp", f"res_new_{n}") for n in loaded}
        for name, table in loaded.items():
            stored = self.store.values_table(name)
            self.store.require_values_match(name, table)
            keys = self.store.keys_table(name)
            stored_types, key_columns = (self.store.columns(t) for t in blocking_keys.tables(name))
            picks = []
            for other in loaded:
                if not _compared(s.link_type, name, other):
                    continue
                for rule, columns in rules:
                    if (
                        columns
                        and blocking_keys.key_column(columns) in key_columns
                        and blocking_keys.hashable(columns, stored_types, new_types[other])
                    ):
                        picks.append(blocking_keys.candidates_sql(keys, columns, f"res_new_{other}"))
                        continue
                    picks.append(
                        f"SELECT l.source_dataset, l.unique_id FROM {stored} l SEMI JOIN res_new_{other} r ON ({rule})"
                    )
                    if columns is None:
                        picks.append(
                            f"SELECT r.source_dataset, r.unique_id FROM {stored} r SEMI JOIN res_new_{other} l ON ({rule})"
                        )
            if picks:
                # Keys first (each rule's scan reads its own columns), then the rows once: reading every column
                # of the stored records once per rule was the largest part of a small resolve at 1M records.
                with serving_indexes.scanning(con):
                    con.execute(f"""
                        CREATE OR REPLACE TEMP TABLE res_candidates AS
                        SELECT DISTINCT * FROM ({" UNION ALL ".join(picks)}) ANTI JOIN res_new_keys USING ({KEYS})""")
                found = self.store.rows_of(stored, "SELECT * FROM res_candidates", "res_candidate_values")
                con.execute(f"INSERT INTO {table} SELECT * FROM {found}")
        for table in loaded.values():  # which records are new, for the narrowed blocking rules
            con.execute(f"ALTER TABLE {table} ADD COLUMN {NEW_RECORD} BOOLEAN DEFAULT false")
            con.execute(f"UPDATE {table} SET {NEW_RECORD} = true WHERE ({KEYS}) IN (SELECT ({KEYS}) FROM res_new_keys)")

    def _show_candidates_to_simulated_judge(self) -> None:
        """The SIMULATED truth judge reads the truth of the records loaded when it was made (the new ones): add
        the stored candidates' (a real judge reads every record at asking time)."""
        from .judges.truth import TruthJudge
        from .sources import column_lookup

        for asker in getattr(self.job.judge, "askers", [self.job.judge]):
            if isinstance(asker, TruthJudge):
                asker.truth.update(column_lookup(self.con, self.session.loaded, asker.truth_column))

    def _term_frequencies(self) -> None:
        """Term frequencies over every stored record and the new ones (a record sent again counts once, in its new
        version), for the model's adjusted columns: only of the values this resolve's records hold (all a lookup
        is asked for), over the whole store's count."""
        con, job = self.con, self.job
        columns = sorted(
            {lv["tf_adjustment_column"] for c in self.session.untrained_model["comparisons"]
             for lv in c["comparison_levels"] if lv.get("tf_adjustment_column")}
        )  # fmt: skip
        lookups = {}
        names = list(self.session.loaded.tables)
        # Counted as the store's count, less its rows of the records sent again (replaced by their new version,
        # read by index), plus the new records: scanning the store less those rows took 30-50 ms a column at 1M.
        replaced = {
            n: self.store.rows_of(self.store.values_table(n), "SELECT * FROM res_new_keys", f"res_replaced_{n}")
            for n in names
        }
        for col in columns:
            q = quote_ident(col)
            wanted = " UNION ".join(
                f"SELECT {q} FROM {t} WHERE {q} IS NOT NULL" for t in self.session.loaded.tables.values()
            )
            parts = [(self.store.values_table(n), "") for n in names]
            parts += [(replaced[n], "-") for n in names] + [(f"res_new_{n}", "") for n in names]
            counts = " UNION ALL ".join(
                f"SELECT {q}, {sign}count(*) AS n FROM {t} WHERE {q} IN (SELECT {q} FROM wanted) GROUP BY {q}"
                for t, sign in parts
            )
            total = " + ".join(f"{sign}(SELECT count({q}) FROM {t})" for t, sign in parts)
            table = f"res_tf_{col}"
            con.execute(f"""
                CREATE OR REPLACE TABLE {table} AS
                WITH wanted AS ({wanted}), counted AS ({counts})
                SELECT {q}, sum(n)::DOUBLE / ({total}) AS {quote_ident("tf_" + col)}
                FROM counted GROUP BY {q} HAVING sum(n) > 0""")
            lookups[col] = table
        job.session.backend.tf_lookups = lookups

    def _score(self) -> None:
        """Job.score of the pairs with a new record only (the candidates among themselves were decided by the
        runs that stored them): blocking narrowed to them, and only the human labels that involve a new record
        (a label outside blocking is scored by a Splink linker of its own: every label of the store would cost
        that on every resolve)."""
        self.session.splink_messages.rules_narrowed = True
        human = self.job.store.human()
        keys = []
        if len(human):
            new = {tuple(k) for k in self.con.execute("SELECT source_dataset, unique_id FROM res_new_keys").fetchall()}
            keys = [k for k in pair_keys(human) if k[:2] in new or k[2:] in new]
        self.job.inference.score(_pairs_with_a_new_record(self.job.training.model), keys)

    # ---- deciding -------------------------------------------------------------------------------------
    def _actions(self) -> None:
        """`res_actions` (source_dataset, unique_id, action, entity_id or NULL, group_id): new records joined by
        accepted pairs decide together (see the module docstring)."""
        con = self.con
        d = con.execute(f"""
            SELECT {", ".join(PAIR_KEY)}, final_match, needs_review FROM res_decisions
            WHERE final_match OR needs_review""").df()
        new = {tuple(k) for k in con.execute("SELECT source_dataset, unique_id FROM res_new_keys").fetchall()}
        mem = self.store.rows_of("membership", IN_DECISIONS, "res_decided_membership")
        entity_of = dict(
            ((sd, uid), e)
            for sd, uid, e in con.execute(f"SELECT source_dataset, unique_id, entity_id FROM {mem}").fetchall()
        )
        parent = {k: k for k in new}

        def root(k):
            while parent[k] != k:
                parent[k] = parent[parent[k]]
                k = parent[k]
            return k

        accepted = d[d.final_match & ~d.needs_review]
        for r in accepted.itertuples(index=False):
            a, b = (r.source_dataset_l, r.unique_id_l), (r.source_dataset_r, r.unique_id_r)
            if a in new and b in new:
                parent[root(a)] = root(b)
        entities: dict = {}  # group -> stored entities its accepted pairs reach
        doubtful: dict = {}  # group -> what its unjudged band pairs reach (a stored entity, or another group)
        pending: set = set()  # groups with a pair to a stored record that itself waits for review
        for r in d.itertuples(index=False):
            a, b = (r.source_dataset_l, r.unique_id_l), (r.source_dataset_r, r.unique_id_r)
            for mine, other in ((a, b), (b, a)):
                if mine not in new:
                    continue
                reach = root(other) if other in new else entity_of.get(other)
                if reach is None:
                    pending.add(root(mine))
                elif r.needs_review:
                    doubtful.setdefault(root(mine), set()).add(reach)
                elif other not in new:
                    entities.setdefault(root(mine), set()).add(reach)
        # A band pair matters only when its answer could change the outcome: it reaches an entity (or another new
        # group) other than those the accepted pairs chose.
        open_question = {g: (doubtful.get(g, set()) - {g}) - entities.get(g, set()) for g in set(map(root, new))}
        settled = [es for g, es in entities.items() if not open_question[g] and g not in pending]
        merging = self.session.settings.entities.bridges == "merge"
        survivor = self._survivors(settled) if merging else {}
        held = self._one_to_one_held(entities)
        rows = []
        for k in sorted(new):
            g = root(k)
            found = sorted(entities.get(g, ()))
            into = sorted({survivor.get(e, e) for e in found})
            gid = f"{g[0]}:{g[1]}"
            if open_question[g]:
                n = len(open_question[g])
                rows.append((*k, "REVIEW", None, gid, f"a band pair left unjudged reaches {n} other entit"
                             + ("y" if n == 1 else "ies")))  # fmt: skip
            elif g in pending:
                rows.append((*k, "REVIEW", None, gid, "matches a record that waits for review"))
            elif len(into) > 1:
                rows.append((*k, "REVIEW", None, gid, f"accepted into {len(into)} entities"))
            elif into and (into[0], k[0]) in held:
                rows.append((*k, "REVIEW", None, gid, "one-to-one: the entity already holds a record of this source"))
            elif into:
                joined = f"joined {len(found)} entities into one" if len(found) > 1 else None
                rows.append((*k, "MERGE", into[0], gid, joined))
            else:
                rows.append((*k, "INSERT", None, gid, None))
        frame = pd.DataFrame(rows, columns=[*KEY, "action", "entity_id", "group_id", "note"])
        merges = pd.DataFrame(
            [(e, w) for e, w in survivor.items() if e != w], columns=["entity_id", "merged_into"], dtype=object
        )
        with registered(con, "res_merges_df", merges):
            con.execute(
                "CREATE OR REPLACE TEMP TABLE res_merges AS SELECT CAST(entity_id AS VARCHAR) AS entity_id, "
                "CAST(merged_into AS VARCHAR) AS merged_into FROM res_merges_df"
            )
        with registered(con, "res_actions_df", frame):
            con.execute(
                "CREATE OR REPLACE TEMP TABLE res_actions AS SELECT source_dataset, unique_id, action, "
                "CAST(entity_id AS VARCHAR) AS entity_id, group_id, CAST(note AS VARCHAR) AS note FROM res_actions_df"
            )
        self._mint()

    def _one_to_one_held(self, entities: dict) -> set:
        """(entity, source) pairs where the entity already holds a record of that source, with
        routing.one_to_one in a link job: a new record of that source would be its second (a run keeps one)."""
        s = self.session.settings
        reached = sorted(set().union(*entities.values())) if entities else []
        if not (s.routing.one_to_one and s.link_type != "dedupe_only" and reached):
            return set()
        return set(
            self.con.execute(
                f"SELECT DISTINCT entity_id, source_dataset FROM {self.store.table('membership')} WHERE entity_id IN ?",
                [reached],
            ).fetchall()
        )

    def _survivors(self, reached) -> dict:
        """Stored entity -> the entity it merges into, for entities a new group's accepted pairs join together
        (chained: two groups sharing an entity merge all three). The survivor is the oldest entity, then the
        larger, as a run keeps it (entities/stable_ids.py)."""
        joined = [sorted(es) for es in reached if len(es) > 1]
        if not joined:
            return {}
        parent: dict = {}

        def root(e):
            parent.setdefault(e, e)
            while parent[e] != e:
                parent[e] = parent[parent[e]]
                e = parent[e]
            return e

        for es in joined:
            for e in es[1:]:
                parent[root(e)] = root(es[0])
        ent, mem = self.store.table("entities"), self.store.table("membership")
        # Entities a label (a person's, a judge's) says hold different people are not merged: such a record waits
        # for review instead, as a run would split the chain again (verify.contradictions).
        member_of = {
            (sd, uid): e
            for sd, uid, e in self.con.execute(
                f"SELECT source_dataset, unique_id, entity_id FROM {mem} WHERE entity_id IN ?", [sorted(parent)]
            ).fetchall()
        }
        labels = self.job.store.effective()
        apart = set()
        if len(labels):
            for r in labels[~labels["match"].astype(bool)][PAIR_KEY].itertuples(index=False):
                a, b = member_of.get((r[0], r[1])), member_of.get((r[2], r[3]))
                if a and b and a != b and root(a) == root(b):
                    apart.add(root(a))
        order = self.con.execute(
            f"SELECT entity_id FROM {ent} WHERE entity_id IN ? ORDER BY created_seq, size DESC, entity_id",
            [sorted(parent)],
        ).fetchall()
        keep: dict = {}
        for (e,) in order:
            keep.setdefault(root(e), e)
        return {e: (e if root(e) in apart else keep[root(e)]) for e in parent}

    def _mint(self) -> None:
        """New ids for the INSERT groups (entities.id_template, from the group's values)."""
        con = self.con
        ids = mint_ids(
            con,
            self.session.settings.entities.id_template,
            "SELECT group_id AS g, group_id AS k, source_dataset, unique_id FROM res_actions WHERE action = 'INSERT'",
            {n: f"res_new_{n}" for n in self.session.loaded.tables},
            f"SELECT entity_id FROM {self.store.table('entities')}",
        )
        minted = pd.DataFrame({"group_id": list(ids), "minted": list(ids.values())}, dtype=object)
        with registered(con, "res_minted_df", minted):
            con.execute("""
                CREATE OR REPLACE TEMP TABLE res_actions AS
                SELECT a.source_dataset, a.unique_id, a.action, coalesce(a.entity_id, CAST(m.minted AS VARCHAR)) AS entity_id,
                    a.group_id, a.note
                FROM res_actions a LEFT JOIN res_minted_df m USING (group_id)""")

    # ---- the store ----------------------------------------------------------------------------------
    def _plan(self) -> Plan:
        """The store's changes, as a run's (entities/stable_ids.Plan): members added (and, for a changed
        record that moved, removed), entities created and resized, the records' values, events, resolutions."""
        con, s = self.con, self.session
        mem, ent = self.store.table("membership"), self.store.table("entities")
        run = sql_literal(s.run_id)
        next_seq = self.store.next_created_seq()

        def table(name, sql):
            drop_relation(con, name)
            con.execute(f"CREATE TEMP TABLE {name} AS {sql}")
            return name

        # The new records, and the members of entities a new record joined to an older one (they move to it).
        assigned = table(
            "res_assigned",
            f"""
            SELECT source_dataset, unique_id, entity_id FROM res_actions WHERE action <> 'REVIEW'
            UNION ALL
            SELECT m.source_dataset, m.unique_id, g.merged_into FROM {mem} m JOIN res_merges g USING (entity_id)
            ANTI JOIN res_actions a USING (source_dataset, unique_id)""",
        )
        # From here on, the membership of these records is all that is read.
        mem = self.store.rows_of(
            "membership",
            f"SELECT {KEYS} FROM {assigned} UNION SELECT {KEYS} FROM res_actions",
            "res_assigned_membership",
        )
        added = table(
            "res_added",
            f"""
            SELECT a.source_dataset, a.unique_id, a.entity_id, m.entity_id AS prev_entity
            FROM res_assigned a LEFT JOIN {mem} m USING (source_dataset, unique_id)
            WHERE m.entity_id IS DISTINCT FROM a.entity_id""",
        )
        removed = table(
            "res_removed",
            f"""
            SELECT m.source_dataset, m.unique_id, m.entity_id, a.entity_id AS new_entity
            FROM {mem} m JOIN res_added a USING (source_dataset, unique_id)
            UNION ALL  -- a stored record sent again changed that now waits for review leaves its entity
            SELECT m.source_dataset, m.unique_id, m.entity_id, NULL FROM {mem} m
            JOIN res_actions a USING (source_dataset, unique_id) WHERE a.action = 'REVIEW'""",
        )
        created = table(
            "res_created",
            f"""
            SELECT entity_id, count(*) AS size, {next_seq} - 1 + row_number() OVER (ORDER BY entity_id) AS created_seq
            FROM res_actions WHERE action = 'INSERT' GROUP BY entity_id""",
        )
        resized = table(  # read by entity_id alone, which the serving index answers (as rows_of does)
            "res_resized_entities",
            f"""
            SELECT * FROM {ent} WHERE entity_id IN (
                SELECT entity_id FROM res_added UNION SELECT entity_id FROM res_removed)""",
        )
        changed = table(
            "res_sizes",
            f"""
            SELECT e.entity_id, e.size + coalesce(a.n, 0) - coalesce(r.n, 0) AS size FROM {resized} e
            LEFT JOIN (SELECT entity_id, count(*) AS n FROM res_added GROUP BY 1) a USING (entity_id)
            LEFT JOIN (SELECT entity_id, count(*) AS n FROM res_removed GROUP BY 1) r USING (entity_id)
            WHERE (a.n IS NOT NULL OR r.n IS NOT NULL) AND e.entity_id NOT IN (SELECT entity_id FROM res_created)""",
        )
        retired = table(
            "res_retired",
            """SELECT z.entity_id, g.merged_into FROM res_sizes z LEFT JOIN res_merges g USING (entity_id)
               WHERE z.size = 0""",
        )
        seen = table(
            "res_seen",
            """
            SELECT s.source_dataset, s.unique_id, s.content_hash, r.unique_id IS NULL AS new
            FROM res_sent s SEMI JOIN res_new_keys USING (source_dataset, unique_id)
            LEFT JOIN res_sent_records r USING (source_dataset, unique_id)
            WHERE r.content_hash IS DISTINCT FROM s.content_hash OR r.gone_run IS NOT NULL""",
        )
        gone = table("res_gone", "SELECT source_dataset, unique_id FROM res_seen WHERE false")
        events = table(
            "res_events",
            f"""
            WITH links AS ({_each_side("decided_by, match_probability", "WHERE final_match")}),
            evidence AS ({strongest_pairs_sql("SELECT * FROM links", "sd, uid")}),
            body AS (
                SELECT 1 AS k, 'created' AS event, entity_id, NULL AS other_entity_id, NULL AS source_dataset,
                    NULL AS unique_id, json_object('size', size)::VARCHAR AS detail FROM res_created
                UNION ALL
                SELECT 2, 'record_added', a.entity_id, a.prev_entity, a.source_dataset, a.unique_id, e.detail
                FROM res_added a LEFT JOIN evidence e ON e.sd = a.source_dataset AND e.uid = a.unique_id
                UNION ALL
                SELECT 3, 'record_removed', entity_id, new_entity, source_dataset, unique_id,
                    CASE WHEN entity_id IN (SELECT entity_id FROM res_merges) THEN 'merged'
                         WHEN new_entity IS NULL THEN 'changed, waits for review' ELSE 'changed, moved' END
                FROM res_removed
                UNION ALL
                SELECT 4, 'merged', g.merged_into, g.entity_id, NULL, NULL, json_object('by', list(DISTINCT
                    a.source_dataset || ':' || a.unique_id ORDER BY a.source_dataset || ':' || a.unique_id))::VARCHAR
                FROM res_merges g JOIN res_actions a ON a.entity_id = g.merged_into AND a.note IS NOT NULL
                GROUP BY ALL
                UNION ALL
                SELECT 5, 'retired', entity_id, merged_into, NULL, NULL,
                    CASE WHEN merged_into IS NULL THEN 'no records left' ELSE 'merged' END FROM res_retired)
            SELECT {run} AS run_id, row_number() OVER (ORDER BY k, entity_id, source_dataset, unique_id) AS seq,
                event, entity_id, other_entity_id, source_dataset, unique_id, detail, now() AS time FROM body""",
        )
        resolutions = table(
            "res_store_rows",
            f"""
            WITH latest AS ({self._latest_resolutions_sql()})
            SELECT {run} AS run_id, a.source_dataset, a.unique_id, h.content_hash, a.action,
                CASE WHEN a.action = 'REVIEW' THEN NULL ELSE a.entity_id END AS entity_id
            FROM res_actions a JOIN res_sent h USING (source_dataset, unique_id)
            LEFT JOIN latest l USING (source_dataset, unique_id)
            -- the same outcome for the same content is not news (a record waiting for review, sent again)
            WHERE (l.content_hash, l.action, l.entity_id) IS DISTINCT FROM (h.content_hash, a.action,
                CASE WHEN a.action = 'REVIEW' THEN NULL ELSE a.entity_id END)""",
        )
        inputs = {n: f"res_new_{n}" for n in s.loaded.tables} if s.settings.entities.keep_values else None
        return Plan(
            assigned, added, removed, created, retired, changed, seen, gone, events, inputs,
            all_records=False, resolutions=resolutions, key_rules=blocking_keys.equality_rules(s.settings.blocking_rules),
        )  # fmt: skip

    # ---- the answer ---------------------------------------------------------------------------------
    def _resolutions(self, known: pd.DataFrame, n_new: int) -> pd.DataFrame:
        """One row per record sent: action, entity, candidate entities with their best probability, how the best
        pair was decided and the judge's reasoning."""
        columns = [*KEY, "action", "entity_id", "note", "candidates", "decided_by", "match_probability", "reasoning"]
        frames = []
        if len(known):
            frames.append(
                known.assign(
                    note=None,
                    candidates=None,
                    decided_by="sent before, unchanged",
                    match_probability=None,
                    reasoning=None,
                )
            )
        if n_new:
            # The membership after the commit: what _actions read, changed as the commit changed the store (its
            # rows of res_removed deleted, of res_added inserted). Read again, it cost 90 ms for 100 records.
            mem = "res_final_membership"
            self.con.execute(f"""
                CREATE OR REPLACE TEMP TABLE {mem} AS
                SELECT source_dataset, unique_id, entity_id FROM res_decided_membership
                ANTI JOIN res_removed USING ({KEYS})
                UNION ALL
                SELECT a.source_dataset, a.unique_id, a.entity_id FROM res_added a
                SEMI JOIN ({IN_DECISIONS}) d USING ({KEYS})""")
            frames.append(
                self.con.execute(f"""
                WITH mine AS ({_each_side("match_probability, decided_by, judge_reasoning, final_match")}),
                cand AS (
                    SELECT m.sd, m.uid, coalesce(e.entity_id, a.entity_id) AS entity, max(m.match_probability) AS p
                    FROM mine m LEFT JOIN {mem} e ON e.source_dataset = m.o_sd AND e.unique_id = m.o_uid
                    LEFT JOIN res_actions a ON a.source_dataset = m.o_sd AND a.unique_id = m.o_uid
                    WHERE m.match_probability > {self.session.settings.routing.low} GROUP BY ALL),
                best AS (
                    SELECT sd, uid, arg_max(decided_by, match_probability) AS decided_by,
                        max(match_probability) AS match_probability,
                        arg_max(judge_reasoning, match_probability) AS reasoning FROM mine GROUP BY ALL)
                SELECT a.source_dataset, a.unique_id, a.action, CASE WHEN a.action = 'REVIEW' THEN NULL ELSE a.entity_id END AS entity_id, a.note,
                    (SELECT list({{'entity_id': c.entity, 'match_probability': round(c.p, 4)}} ORDER BY c.p DESC)
                     FROM cand c WHERE c.sd = a.source_dataset AND c.uid = a.unique_id AND c.entity IS NOT NULL) AS candidates,
                    coalesce(b.decided_by, 'no candidate') AS decided_by, b.match_probability, b.reasoning
                FROM res_actions a LEFT JOIN best b ON b.sd = a.source_dataset AND b.uid = a.unique_id
                ORDER BY a.source_dataset, a.unique_id""").df()
            )
        return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)

    def _write_review(self, resolutions_path: Path) -> Path:
        """The pairs that hold a record in REVIEW (its unjudged band pairs, and its accepted pairs when they reach
        two entities), in the review file format: a person answers them, `splink-er review import` stores the
        answers as human labels, and the record sent again is decided by them."""
        from .review import write_queue

        queue = self.con.execute(f"""
            SELECT d.* FROM res_decisions d
            WHERE (d.needs_review OR d.final_match) AND EXISTS (
                SELECT 1 FROM res_actions a WHERE a.action = 'REVIEW' AND (
                    (a.source_dataset = d.source_dataset_l AND a.unique_id = d.unique_id_l)
                    OR (a.source_dataset = d.source_dataset_r AND a.unique_id = d.unique_id_r)))
            ORDER BY abs(d.match_probability - 0.5), {", ".join(PAIR_KEY)}""").df()
        csv = resolutions_path.with_name(resolutions_path.stem + ".review.csv")
        write_queue(self.job, queue, csv)
        return csv

    def _write(self, resolutions: pd.DataFrame, out) -> Path | None:
        folder = Path(out) if out else self.session.settings.output_path / "resolutions"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self.session.run_id}.parquet"
        part = path.with_name(f".{path.name}.part")
        resolutions.to_parquet(part, index=False)
        part.replace(path)  # never half a file under the final name
        return path


def _each_side(columns: str, where: str = "") -> str:
    """The decisions once from each record's side: sd, uid (the record), o_sd, o_uid (the other), `columns`."""
    return f"""
        SELECT source_dataset_l AS sd, unique_id_l AS uid, source_dataset_r AS o_sd, unique_id_r AS o_uid, {columns}
        FROM res_decisions {where}
        UNION ALL
        SELECT source_dataset_r, unique_id_r, source_dataset_l, unique_id_l, {columns} FROM res_decisions {where}"""


def _changes_anything(con, plan: Plan) -> bool:
    tables = (plan.seen, plan.events, plan.resolutions)
    return any(con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in tables)


def _compared(link_type: str, a: str, b: str) -> bool:
    """Whether records of sources a and b are compared under `link_type`."""
    if link_type == "dedupe_only":
        return a == b
    if link_type == "link_only":
        return a != b
    return True


__all__ = ["ACTIONS", "ResolveResult", "resolve", "EVENT_COLUMNS"]

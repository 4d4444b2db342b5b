"""The entity component of a job (see `Job.entities`): stable ids for this run's clusters, committed to the store.

`assign` computes everything (stable ids, events) in the job's own database without writing the store;
`commit` then writes the store in one transaction. A run commits just before it publishes its outputs, so the
store and the published run agree except in the instant between (a kill there leaves the store one run ahead,
and its events say what that run changed).
"""

from __future__ import annotations

from ..sql import drop_relation
from .blocking_keys import equality_rules
from .stable_ids import Plan, plan_changes
from .store import EntityStore


class EntityLayer:
    def __init__(self, session) -> None:
        self.session = session
        self.plan: Plan | None = None
        self.store: EntityStore | None = None

    @property
    def enabled(self) -> bool:
        return self.session.settings.entities.enabled

    def assign(self, clusters: str, decisions: str, table: str = "clusters") -> str:
        """Table `table` (source_dataset, unique_id, entity_id): the stable id of every record's entity, from
        `clusters` (source_dataset, unique_id, cluster_id) and the run's `decisions` (for the events' evidence).
        With entities off, the entity id is this run's cluster id."""
        s = self.session
        con = s.con
        drop_relation(con, table)
        if not self.enabled:
            con.execute(
                f"CREATE TABLE {table} AS SELECT source_dataset, unique_id, cluster_id AS entity_id FROM {clusters}"
            )
            return table
        with s.clock.stage("entities"), s.reporter.status("entities: stable ids and changes"):
            self.store = EntityStore(con, s.settings.entity_store_path)
            self.plan = plan_changes(
                con, self.store, clusters, decisions, s.loaded.tables, s.run_id, s.settings.entities.id_template
            )
            if s.settings.entities.keep_values:
                self.plan.inputs = dict(s.loaded.tables)
                self.plan.key_rules = equality_rules(s.settings.blocking_rules)
            con.execute(f"CREATE TABLE {table} AS SELECT * FROM {self.plan.assigned}")
        return table

    def changes_sql(self) -> str:
        """This run's events, in order (no rows with entities off or before `assign`)."""
        if self.plan is None:
            from .store import EVENT_COLUMNS

            return "SELECT " + ", ".join(f"NULL::VARCHAR AS {c}" for c in EVENT_COLUMNS) + " WHERE false"
        return f"SELECT * FROM {self.plan.events} ORDER BY seq"

    def summary(self) -> dict:
        """Counts of this run's events by kind, for run.json and the report."""
        if self.plan is None:
            return {}
        con = self.session.con
        by_event = dict(con.execute(f"SELECT event, count(*) FROM {self.plan.events} GROUP BY 1 ORDER BY 1").fetchall())
        return {"store": str(self.store.path), "events": by_event}

    def commit(self) -> None:
        if self.plan is None:
            return
        s = self.session
        with s.clock.stage("entities"):
            self.store.commit(s.run_id, self.plan)
            self.store.detach()

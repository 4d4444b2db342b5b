"""A job's fixed context: settings, the DuckDB connection, the backend, the loaded sources, the run id.

Components (training, inference, judging, evaluation, outputs) each keep a reference to the session, as Splink's
linker components keep one to the linker. The session's settings are frozen; rules a run learns are added with
`with_blocking_rules`, which replaces the session's settings by a copy and never touches the caller's object.
"""

from __future__ import annotations

import uuid
from contextlib import nullcontext
from datetime import UTC, datetime

from .engine import make_backend
from .engine.duckdb_engine import make_db
from .errors import InputError
from .model import required_columns, splink_settings_dict
from .progress import Reporter, Stopwatch
from .settings import Settings
from .sources import check_rules_run, load_sources, truth_columns
from .splink_messages import route_splink_messages
from .sql import possible_pairs


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


class Session:
    def __init__(
        self,
        settings: Settings,
        reporter: Reporter,
        data: dict | None = None,
        spark=None,
        allow_empty: bool = False,
        con=None,
    ) -> None:
        self.settings = settings
        self.reporter = reporter
        self.clock = Stopwatch()
        self.splink_messages = route_splink_messages(reporter, settings.bootstrap.u_max_pairs)
        self.run_id = new_run_id()
        self.db = make_db(settings, con)
        self.con = self.db.duckdb_con
        self.untrained_model = splink_settings_dict(settings)
        required = required_columns(settings, self.untrained_model)
        with self.clock.stage("load"):
            self.loaded = load_sources(self.con, settings, required, data, allow_empty)
            check_rules_run(self.con, settings, self.loaded)
        self.sdfs = [self.db.register(t, dataset_display_name=n) for n, t in self.loaded.tables.items()]
        spark_job = settings.engine.kind == "spark"
        with self.clock.stage("spark_setup") if spark_job else nullcontext():
            with reporter.status("starting Spark") if spark_job else nullcontext():
                self.backend = make_backend(self, spark)
        truth_cols = set(truth_columns(settings))
        # What a judge and a reader see: the matched and kept columns, never the truth.
        self.display_columns = sorted((required | set(settings.columns_to_keep)) - truth_cols)
        self.n_possible = possible_pairs(settings.link_type, list(self.loaded.row_counts.values()))
        self.splink_messages.possible_pairs = self.n_possible
        if self.n_possible == 0 and not allow_empty:
            raise InputError(
                f"the inputs hold no pair to compare (records per source: {self.loaded.row_counts}); a dedupe needs "
                "two records, a link a record in each of two sources"
            )

    def with_blocking_rules(self, rules: list) -> list:
        """Add blocking rules to this job's settings (a copy); returns the rules now in force."""
        current = self.settings.blocking_rules
        added = [r for r in rules if r not in current]
        if added:
            self.settings = self.settings.model_copy(update={"blocking_rules": current + added})
        return self.settings.blocking_rules

    def blocking_rules_sql(self) -> list:
        """Splink's rendering of the rules in force (what every model of this job predicts with)."""
        return splink_settings_dict(self.settings)["blocking_rules_to_generate_predictions"]

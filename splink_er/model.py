"""The Splink model: the Splink settings dict a job's settings describe, the input columns it reads, and its file.

A model is a Splink settings dict with m/u values (what `save_model_to_json` writes); it is kept as a dict so
that training can edit m values and the prior directly and every round's model can be saved and reloaded exactly.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import splink.comparison_library as cl
from splink import Linker, SettingsCreator, block_on

from . import comparisons as comparison_blocks
from .entities.ids import IdTemplate
from .normalize import normalizer_for
from .settings import BlockingRule, ComparisonSettings, Settings
from .sources import truth_columns
from .sql import columns_in_sql


def blocking_rule(rule: BlockingRule):
    """A settings blocking rule (list of columns, or SQL) as something Splink accepts."""
    return block_on(*rule) if isinstance(rule, list) else rule


def _comparison(c: ComparisonSettings, translate=None, translate_args=None, party_codes=frozenset()):
    """A settings comparison as Splink takes it. `translate` rewrites custom SQL and `translate_args` library
    comparison arguments (date formats) for another engine; Splink writes library comparisons and this library's
    building blocks in each dialect. `party_codes`: code columns of `party` prepare steps (see comparisons.build)."""
    if c.kind == "custom":
        levels = []
        for lv in c.levels or []:
            level = {"sql_condition": lv.sql, "label_for_charts": lv.label or lv.sql}
            if lv.null_level:
                level["is_null_level"] = True
            if lv.tf_adjustment_column:
                level |= {"tf_adjustment_column": lv.tf_adjustment_column, "tf_adjustment_weight": 1.0}
            levels.append(level)
        comp = {"output_column_name": c.output_column_name, "comparison_levels": levels}
    elif c.kind in comparison_blocks.BUILDERS:  # Splink writes these in each dialect itself
        return comparison_blocks.build(c.kind, c.args, party_codes)
    else:
        comp = getattr(cl, c.kind)(c.column, **(translate_args(c.args) if translate_args else c.args))
        return comp.configure(term_frequency_adjustments=True) if c.term_frequency_adjustments else comp
    if translate:
        for level in comp["comparison_levels"]:
            level["sql_condition"] = translate(level["sql_condition"])
    return comp


# Splink builds a settings dict by parsing every level's SQL (sqlglot): a tenth of a second that a service
# resolving one record at a time would pay per request. The dict is a pure function of the settings.
_SETTINGS_DICTS: dict[tuple[str, str], dict] = {}


def splink_settings_dict(settings: Settings, dialect: str = "duckdb", translate=None, translate_args=None) -> dict:
    """The untrained Splink settings dict for these settings; DuckDB SQL unless a Spark twin is asked for
    (`translate` rewrites custom and blocking-rule SQL, `translate_args` date formats; see spark_backend).
    A fresh copy each call (callers may change it)."""
    if translate is not None or translate_args is not None:
        return _build_settings_dict(settings, dialect, translate, translate_args)
    key = (settings.model_dump_json(), dialect)
    if key not in _SETTINGS_DICTS:
        if len(_SETTINGS_DICTS) > 32:  # a notebook trying many settings: keep the memo small
            _SETTINGS_DICTS.clear()
        _SETTINGS_DICTS[key] = _build_settings_dict(settings, dialect)
    return copy.deepcopy(_SETTINGS_DICTS[key])


def _build_settings_dict(settings: Settings, dialect: str, translate=None, translate_args=None) -> dict:
    party_codes = frozenset(
        normalizer_for(step).output_columns()[0]
        for src in settings.sources
        for step in src.prepare
        if step.kind == "party"
    )
    comparisons = [_comparison(c, translate, translate_args, party_codes) for c in settings.comparisons]
    creator = _settings_creator(settings, comparisons, translate)
    settings_dict = creator.create_settings_dict(dialect)
    # Gates and accept rules read Splink's pair columns: one no comparison reads (a zip_in_state flag) must be
    # retained too. Only then is it added, so settings that never needed it keep their model unchanged.
    rules = {c for rule in settings.routing.gates + settings.routing.accept_rules for c in columns_in_sql(rule.sql)}
    if not rules:
        return settings_dict
    # Columns are read off the DuckDB form (the SQL parser reads DuckDB's; Spark's quotes names with backticks).
    duckdb_form = settings_dict if dialect == "duckdb" else splink_settings_dict(settings)
    read = {
        c
        for comp in duckdb_form["comparisons"]
        for lv in comp["comparison_levels"]
        for c in columns_in_sql(lv["sql_condition"])
    }
    extra = sorted(rules - read)
    if not extra:
        return settings_dict
    return _settings_creator(settings, comparisons, translate, extra).create_settings_dict(dialect)


def _settings_creator(settings: Settings, comparisons: list, translate, extra: list[str] | None = None):
    return SettingsCreator(
        link_type=settings.link_type,
        comparisons=comparisons,
        blocking_rules_to_generate_predictions=[
            blocking_rule(r if isinstance(r, list) or translate is None else translate(r))
            for r in settings.blocking_rules
        ],
        unique_id_column_name="unique_id",
        source_dataset_column_name="source_dataset",
        # Both retained: gates are SQL over <col>_l/_r, and waterfall charts need the intermediate columns.
        retain_matching_columns=True,
        retain_intermediate_calculation_columns=True,
        **({"additional_columns_to_retain": extra} if extra else {}),
    )


def required_columns(settings: Settings, model: dict) -> set[str]:
    """Every input column the comparisons, blocking rules, bootstrap rules, gates and accept rules read."""
    cols: set[str] = set()
    for comp in model["comparisons"]:
        for level in comp["comparison_levels"]:
            cols |= columns_in_sql(level["sql_condition"])
            if level.get("tf_adjustment_column"):
                cols.add(level["tf_adjustment_column"])
    rules = settings.blocking_rules + settings.bootstrap.deterministic_rules + settings.bootstrap.em_blocking_rules
    for rule in rules:
        cols |= set(rule) if isinstance(rule, list) else columns_in_sql(rule)
    for rule in settings.routing.gates + settings.routing.accept_rules:
        cols |= columns_in_sql(rule.sql)
    # Columns every source prepares or derives are kept too: learned blocking builds candidate rules from them.
    declared = [
        set(src.derive) | {c for step in src.prepare for c in normalizer_for(step).output_columns()}
        for src in settings.sources
    ]
    truth = set(truth_columns(settings))
    cols |= (set.intersection(*declared) - truth) if declared else set()
    if settings.entities.enabled:  # fields a scoped entity id is made of
        cols |= set(IdTemplate(settings.entities.id_template).fields)
    cols |= settings.registry.columns() | settings.verify.columns()  # canonical layer, entity checks
    return cols | set(settings.blocking.candidate_columns or [])


def levels_with_cvv(comparison: dict) -> list[tuple[int, dict]]:
    """(comparison vector value, level) pairs of a comparison dict, as Splink numbers them: the null level -1, the
    rest counting down to 0 in order."""
    n = sum(not lv.get("is_null_level") for lv in comparison["comparison_levels"])
    out, k = [], n - 1
    for lv in comparison["comparison_levels"]:
        if lv.get("is_null_level"):
            out.append((-1, lv))
        else:
            out.append((k, lv))
            k -= 1
    return out


def make_linker(sdfs: list, model: dict, validate: bool = True) -> Linker:
    """validate=False skips Splink's settings checks (0.3 s a Linker) for a model whose shape a Linker has
    already checked, e.g. one re-weighed after training."""
    # log_level=None: Splink's logger is set once per job (splink_messages.route_splink_messages), not per Linker.
    return Linker(sdfs, copy.deepcopy(model), log_level=None, validate_settings=validate)


def linker_for(sdfs: list, model: dict, db, tf_lookups: dict[str, str]):
    """A Linker predicting with `model` and the job's term-frequency lookups (as the full predict does)."""
    linker = make_linker(sdfs, model)
    for column, table in tf_lookups.items():
        linker.table_management.register_term_frequency_lookup(db.register(table), column)
    return linker


def load_model(path: Path) -> dict:
    return json.loads(Path(path).read_text())

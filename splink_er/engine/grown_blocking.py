"""Blocking grew: compare only the pairs the added rules propose.

Learned blocking adds rules after round 1 (blocking.py). A Splink predict with the grown rules would block and
compare every pair again, though the pairs of the old rules and their comparison vectors are already stored: on
fake_20000 that second predict was 5 to 6 s of a 46 s run. The rules are only ever appended, and Splink gives each
rule its pairs minus those of every rule before it (`match_key` = the rule's position), so the grown blocking's
pairs are exactly the stored pairs plus what the appended rules propose on Splink's own terms. Those are blocked
for the appended rules only (each keeps its preceding rules, so its exclusions and its match_key are the full
predict's; or taken as learned blocking found them) and compared by Splink's own predict with the grown model. The
stored vectors then become the union of the two, and every later score re-weighs it (reweigh.py). tests/test_reweigh.py compares the result with Splink's
predict of the grown rules, row by row, to the last bit.

One difference of content, none of score: Splink retains the columns a blocking rule reads, for display. A column
only an appended rule reads is null on the older rules' pairs (filling it would be a join of every stored pair
with the records twice). Nothing splink_er decides reads such a column: gates and accept rules read columns
retained on their own account (model.py), and waterfalls score their pairs again through Splink.
"""

from __future__ import annotations

import copy

from ..model import levels_with_cvv
from .reweigh import vectors_key

_RULES = "blocking_rules_to_generate_predictions"


def _rules(model: dict) -> list:
    """A model's blocking rules, unset keys left out (Splink writes `arrays_to_explode: None` once it has read a
    rule, the settings' own rendering does not)."""
    return [{k: v for k, v in r.items() if v is not None} if isinstance(r, dict) else r for r in model.get(_RULES, [])]


def rules_appended(stored_model: dict, model: dict) -> int | None:
    """How many rules `model` shares with `stored_model` when it only appends blocking rules to them (same
    comparisons, same level numbering, same everything else but the weights); None otherwise."""
    old, new = (_rules(m) for m in (stored_model, model))
    if len(new) <= len(old) or new[: len(old)] != old:
        return None
    same_rules = copy.deepcopy(stored_model) | {_RULES: model[_RULES]}
    if vectors_key(same_rules) != vectors_key(model):
        return None
    numbering = [
        [[cvv for cvv, _ in levels_with_cvv(c)] for c in m["comparisons"]] for m in (stored_model, model)
    ]  # the stored gammas are read as they are: a renumbered null level would move them
    return len(old) if numbering[0] == numbering[1] else None


def predict_appended_rules(linker, kept: int, blocked_pairs_table: str | None = None):
    """Splink's predict of the pairs only the rules after the first `kept` propose (a SplinkDataFrame).

    Splink's own steps: its blocked pairs of the appended rules, in the cache entry where its predict looks for the
    blocked pairs it made itself (each appended rule keeps its preceding rules, so its exclusions and match_key),
    then its predict. The linker keeps the whole rule list: the columns it retains depend on every rule.
    `blocked_pairs_table`: those blocked pairs already made (learned blocking knows them, blocking.py), used in
    place of Splink's blocking step and dropped after it (never for two inputs linked only: Splink puts the first
    input's record on the left there, not the lesser key; the caller drops it then). Without it, None when a rule
    explodes arrays (its exclusions are not a per-pair condition): then predict them all."""
    from splink.internals.blocking import ExplodingBlockingRule, compute_blocked_pairs_from_concat_with_tf
    from splink.internals.chunking import _blocked_pairs_cache_key
    from splink.internals.pipeline import CTEPipeline
    from splink.internals.vertically_concatenate import enqueue_df_concat

    st = linker._settings_obj
    rules = st._blocking_rules_to_generate_predictions
    db = linker._db_api
    two_inputs_linked = st._link_type == "link_only" and len(linker._input_tables_dict) == 2
    if blocked_pairs_table and not two_inputs_linked:
        blocked = db.table_to_splink_dataframe("__splink__blocked_id_pairs", blocked_pairs_table)
    elif any(isinstance(r, ExplodingBlockingRule) for r in rules):
        return None
    else:
        pipeline = CTEPipeline()
        enqueue_df_concat(linker, pipeline)
        ci = st.column_info_settings
        blocked = compute_blocked_pairs_from_concat_with_tf(  # as Splink's predict calls it, the appended rules
            pipeline=pipeline,
            db_api=db,
            splink_df_dict=linker._input_tables_dict,
            blocking_rules=rules[kept:],
            link_type=st._link_type,
            source_dataset_input_column=ci.source_dataset_input_column,
            unique_id_input_column=ci.unique_id_input_column,
            df_concat_with_tf_table_name="__splink__df_concat",
            left_chunk=(1, 1),
            right_chunk=(1, 1),
        )
    cache, key = linker._intermediate_table_cache, _blocked_pairs_cache_key()
    cache[key] = blocked
    try:
        return linker.inference.predict()
    finally:
        cache.pop(key, None)
        blocked.drop_table_from_database_and_remove_from_cache(force_non_splink_table=blocked_pairs_table is not None)


class UnionHandle:
    """The stored vectors of a grown blocking: a view over the old stored prediction and the appended rules' one;
    dropping it drops both (`Backend.drop` keeps them while the union is stored)."""

    def __init__(self, con, name: str, parts: list) -> None:
        self.con, self.name, self.parts = con, name, parts

    def drop_table_from_database_and_remove_from_cache(self) -> None:
        self.con.execute(f"DROP VIEW IF EXISTS {self.name}")
        for part in self.parts:
            part.handle.drop_table_from_database_and_remove_from_cache()

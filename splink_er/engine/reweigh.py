"""Compare once, re-weigh every round.

Training changes a model's weights (m, u, the prior), never which level each blocked pair reached on each
comparison: the pair's comparison vector. Every prediction keeps the vectors (gamma and term-frequency columns:
the model retains its intermediate columns), so once the blocking and the comparisons are fixed, the next
prediction is Splink's own weights SQL (`predict_from_comparison_vectors_sqls_using_settings`) run over the last
prediction of the same blocking, instead of blocking and comparing every pair again. On DuckDB the re-weighed
prediction is a view over the stored one: a re-score costs nothing until a step reads it, and a read computes only
the columns it asks for. Same SQL on the same values: Splink's predict to the last bit (tests/test_reweigh.py
compares them row by row on every preset, with and without term-frequency adjustments, on DuckDB and Spark).
Splink's predict stays the reference path for the first prediction of a blocking, for resolve, and for every
waterfall chart.

One change of shape is allowed: the numbering of levels. A model in its file form (model.json, model_file.py)
gives a comparison's null level weights of its own, which makes it an ordinary level, and Splink numbers ordinary
levels from the top down, so every gamma of that comparison moves. The stored gammas are renumbered level by
level before the weights are read.
"""

from __future__ import annotations

import copy
import hashlib
import json

from ..model import levels_with_cvv, make_linker

# What training may change without changing a pair's comparison vector (is_null_level: the numbering, see above).
_WEIGHTS = ("m_probability", "u_probability", "is_null_level", "fix_m_probability", "fix_u_probability")


def vectors_key(model: dict) -> str:
    """What a prediction's comparison vectors depend on: the model without its weights (blocking rules,
    comparisons, term-frequency settings, the link type)."""
    shape = copy.deepcopy(model)
    shape.pop("probability_two_random_records_match", None)
    for comparison in shape.get("comparisons", []):
        for level in comparison.get("comparison_levels", []):
            for k in _WEIGHTS:
                level.pop(k, None)
    return hashlib.sha256(json.dumps(shape, sort_keys=True, default=str).encode()).hexdigest()


def _renumbered(gamma: str, before: dict, after: dict) -> str:
    """The SQL giving `after`'s gamma of a comparison from `before`'s (the same levels in the same order)."""
    moves = [(old, new) for (old, _), (new, _) in zip(levels_with_cvv(before), levels_with_cvv(after)) if old != new]
    if not moves:
        return gamma
    whens = " ".join(f"WHEN {old} THEN {new}" for old, new in moves)
    return f"CASE {gamma} {whens} ELSE {gamma} END AS {gamma}"


def reweigh(sdfs: list, vectors, vectors_model: dict, model: dict):
    """Splink's SQL pipeline predicting `model` over the pairs of `vectors` (a SplinkDataFrame: an earlier
    prediction made with `vectors_model`, whose vectors_key is `model`'s)."""
    from splink.internals.pipeline import CTEPipeline
    from splink.internals.predict import predict_from_comparison_vectors_sqls_using_settings

    settings = make_linker(sdfs, model, validate=False)._settings_obj  # the first predict checked the shape
    before = {c["output_column_name"]: c for c in vectors_model["comparisons"]}
    # The columns Splink selects for its comparison vectors, each comparison's CASE replaced by the stored gamma.
    columns = [c for uid in settings.column_info_settings.unique_id_input_columns for c in uid.names_l_r]
    for cc, after in zip(settings.comparisons, model["comparisons"]):
        for col in cc._columns_to_select_for_comparison_vector_values(settings._retain_matching_columns):
            is_gamma = col == cc._case_statement
            columns.append(
                _renumbered(cc._gamma_column_name, before[after["output_column_name"]], after) if is_gamma else col
            )
    columns += [c for add in settings._additional_columns_to_retain for c in add.names_l_r] + ["match_key"]
    columns = list(dict.fromkeys(columns))
    pipeline = CTEPipeline([vectors])
    pipeline.enqueue_sql(
        f"SELECT {', '.join(columns)} FROM {vectors.templated_name}", "__splink__df_comparison_vectors"
    )
    pipeline.enqueue_list_of_sqls(predict_from_comparison_vectors_sqls_using_settings(settings))
    return pipeline

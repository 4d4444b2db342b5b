"""model.json: the run's trained model as Splink loads it, with every m and u a probability.

Logistic training (training.py) fits one Bayes factor per comparison level and keeps it in the level's m slot:
m[l] = m_bootstrap[l] * exp(correction[l]). The fit moves a comparison's present levels relative to its null
level (a missing e-mail is evidence too), and Splink's null level has no m or u to hold that (its Bayes factor is
fixed at 1), so in memory m need not sum to 1 (fake_20000: 264 for e-mail). Constraining the fit to keep the sum
cost F1 (district_to_position 1.0 -> 0.84), so the fit stays free and the file is written in an equivalent form:

- the null level becomes an ordinary level (first, so its SQL still catches nulls before any other level) with
  u = q, the share of random pairs of input records where the comparison is null, and m = q / Z;
- every other level keeps its u (Splink's estimate among pairs where the comparison is present, which its
  term-frequency adjustments read) and takes m' = m / Z, with Z = q + sum of m, so the m values are
  probabilities that sum to 1;
- every pair's weight moves by the same -log2 Z per comparison, which the prior takes back.

Splink's predict on model.json gives every pair the same match weight as the in-memory model (tested pair by
pair); only the split between the prior and the level weights differs, and the null level shows its weight in
waterfall charts. Comparisons whose m already sum to 1 (the bootstrap model) are written as they are.
"""

from __future__ import annotations

import copy
import math

from splink.internals.comparison_level import _default_m_values, _default_u_values

from .model import levels_with_cvv
from .sql import columns_in_sql


def _effective(comparison: dict) -> tuple[dict, dict]:
    """m and u per comparison vector value as Splink predicts with them (its defaults for levels never
    estimated)."""
    n = sum(not lv.get("is_null_level") for lv in comparison["comparison_levels"])
    m_default, u_default = _default_m_values(n), _default_u_values(n)
    m, u = {}, {}
    for cvv, lv in levels_with_cvv(comparison):
        if cvv == -1:
            continue
        m[cvv], u[cvv] = (
            _value(lv.get(k), d[cvv]) for k, d in (("m_probability", m_default), ("u_probability", u_default))
        )
    return m, u


def _value(v, default: float) -> float:
    if v is None:
        return default
    return 1e-6 if isinstance(v, str) else float(v)  # Splink's "level not observed" text predicts as 1e-6


def needs_rewrite(comparison: dict, tol: float = 1e-9) -> bool:
    m, _ = _effective(comparison)
    return abs(sum(m.values()) - 1.0) > tol


def null_conditions(model: dict) -> dict[str, str]:
    """output column name -> the SQL of its null level, for the comparisons the file form rewrites."""
    out = {}
    for c in model["comparisons"]:
        nulls = [lv["sql_condition"] for lv in c["comparison_levels"] if lv.get("is_null_level")]
        if nulls and needs_rewrite(c):
            out[c["output_column_name"]] = nulls[0]
    return out


def null_shares(con, tables: list[str], model: dict, sample: int = 1000) -> dict[str, float]:
    """The share of random pairs of input records (a seeded sample of `sample` x `sample`) where each rewritten
    comparison is null, clipped away from 0 and 1."""
    conditions = null_conditions(model)
    if not conditions:
        return {}
    cols = sorted(set().union(*(columns_in_sql(sql) for sql in conditions.values())))
    union = " UNION ALL ".join(f"SELECT {', '.join(cols)} FROM {t}" for t in tables)
    side = f"SELECT * FROM ({union}) USING SAMPLE reservoir({int(sample)} ROWS) REPEATABLE"
    renamed = ", ".join(f"l.{c} AS {c}_l, r.{c} AS {c}_r" for c in cols)
    shares = ", ".join(f"avg(CASE WHEN {sql} THEN 1.0 ELSE 0.0 END)" for sql in conditions.values())
    row = con.execute(f"""
        SELECT {shares} FROM (SELECT {renamed} FROM ({side} (11)) l CROSS JOIN ({side} (12)) r)""").fetchall()[0]
    return {name: min(max(float(v or 0.0), 1e-6), 1 - 1e-6) for name, v in zip(conditions, row)}


def probability_form(model: dict, shares: dict[str, float]) -> dict:
    """The model as model.json holds it (see the module docstring); `model` is not changed."""
    out = copy.deepcopy(model)
    log2_z_total = 0.0
    for c in out["comparisons"]:
        if not needs_rewrite(c):
            continue
        m, u = _effective(c)  # before the null level turns ordinary: Splink's defaults depend on the count
        has_null = any(lv.get("is_null_level") for lv in c["comparison_levels"])
        q = shares.get(c["output_column_name"], 1e-6) if has_null else 0.0
        z = q + sum(m.values())
        for cvv, lv in levels_with_cvv(c):
            if cvv == -1:
                lv.pop("is_null_level", None)
                lv["m_probability"], lv["u_probability"] = q / z, q
                lv.setdefault("label_for_charts", "null")
            else:
                lv["m_probability"], lv["u_probability"] = m[cvv] / z, u[cvv]
        log2_z_total += math.log2(z)
    prior = model["probability_two_random_records_match"]
    log_odds = math.log2(prior / (1 - prior)) + log2_z_total
    out["probability_two_random_records_match"] = 1 / (1 + 2 ** (-log_odds))
    return out


EXPORT_KEY = "splink_er"  # what `splink-er model export` adds beside the model: run, settings hash, training


def frozen_model(untrained: dict, path) -> tuple[dict, dict]:
    """The model in `path` (model.json or an export) with these settings' blocking rules and link type, and
    where it came from (path, sha256, the export's run). SettingsError when it was trained on other comparisons."""
    import hashlib
    import json
    from pathlib import Path

    from .errors import SettingsError

    path = Path(path)
    if not path.is_file():
        raise SettingsError(f"model: {path} not found (a run's model.json, or a file from `splink-er model export`)")
    raw = path.read_bytes()
    try:
        data = json.loads(raw)
        comparisons, prior = data["comparisons"], data["probability_two_random_records_match"]
    except (ValueError, KeyError, TypeError):
        raise SettingsError(f"model: {path} is not a Splink model (model.json)") from None
    want = [c["output_column_name"] for c in untrained["comparisons"]]
    got = [c.get("output_column_name") for c in comparisons]
    if want != got:
        raise SettingsError(
            f"model: {path} was trained on comparisons {got}, these settings have {want}; use the settings it was "
            "trained with, or train a model for these"
        )
    source = {"path": str(path), "sha256": hashlib.sha256(raw).hexdigest()} | (data.get(EXPORT_KEY) or {})
    return untrained | {"comparisons": comparisons, "probability_two_random_records_match": prior}, source

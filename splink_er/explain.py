"""Explain a pair: Splink's waterfall chart beside the decision and the judge's reasoning.

Writes `<out>/explain/<pair>.png` (the waterfall) and `<out>/explain/<pair>.html`, a self-contained page (the PNG
is inlined, so it opens offline) with the chart, the two records and how the pair was decided.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

import pandas as pd

from .decision_log import read_log
from .errors import InputError
from .inference import score_pairs
from .model import load_model, make_linker
from .outputs import RunDirectory
from .pairs import PAIR_KEY, canonical_key
from .report import CSS, pair_sections, table
from .sources import record_lookup
from .sql import sql_literal


def _section(title: str, rows: dict) -> str:
    return f"<h3>{html.escape(title)}</h3>" + table([{"": k, "value": v} for k, v in rows.items()])


def decision_record(job, key: tuple) -> dict | None:
    """How the run decided a pair: its row of decisions.parquet, plus the judge's model and escalation from the
    decision log and, for a human decision, the judge answer the human overrode."""
    path = job.outputs / RunDirectory.decisions
    if not path.exists():
        return None
    d = pd.read_parquet(path, filters=[("unique_id_l", "==", key[1]), ("unique_id_r", "==", key[3])])
    d = d[(d.source_dataset_l == key[0]) & (d.source_dataset_r == key[2])]
    if not len(d):
        if job.outputs.read_run_record().get("model_rejects_written") is False:
            return {
                "decided_by": "model_reject, or not blocked (model rejects were counted, not written: "
                "outputs.model_rejects)",
                "final_match": False,
            }
        return None
    rec = d.iloc[0].to_dict()
    log = job.settings.decision_log_path
    if log.exists():
        lines = [r for r in read_log(log, ("judge",)) if tuple(str(r[k]) for k in PAIR_KEY) == key]
        if lines:
            last = lines[-1]
            rec["judge_model"] = (last.get("call") or {}).get("model") or last["method"].get("model")
            rec["judge_prompt_version"] = last["method"].get("prompt_version")
            rec["judge_cached_from_run"] = last.get("cached_from_run")
            if last.get("escalated_from"):
                e = last["escalated_from"]
                rec["escalated_from"] = (
                    f"{'match' if e['match'] else 'non-match'} ({e['confidence']}): {e['reasoning']}"
                )
    if rec.get("decided_by") == "human":
        labels = job.store.read_all()
        judged = labels[(labels["source_kind"] == "judge") & (labels[PAIR_KEY].apply(tuple, axis=1) == key)]
        rec["human_override"] = (
            f"yes: the judge had answered {'match' if judged.iloc[-1]['match'] else 'non-match'}"
            if len(judged)
            else "no judge answer to override"
        )
    return rec


def explain_batch(job, *, which: str = "uncertain", n: int = 10) -> Path:
    """One page explaining the `n` most uncertain pairs (nearest p = 0.5 among needs_review and judged pairs,
    least confident judge answers) or the needs_review pairs: `<out>/explain/<which>.html`. `job`: a job whose
    run is finished (see `RunResult.explain_pairs`)."""
    if which not in ("uncertain", "needs_review"):
        raise InputError(f"which must be 'uncertain' or 'needs_review', not {which!r}")
    model = load_model(job.outputs / RunDirectory.model)
    decisions = job.outputs / RunDirectory.decisions
    where = "needs_review" if which == "needs_review" else "needs_review OR decided_by = 'judge'"
    d = job.con.execute(f"""SELECT * FROM read_parquet({sql_literal(decisions)}) WHERE {where}
        ORDER BY abs(match_probability - 0.5) + coalesce(judge_confidence, 0), {", ".join(PAIR_KEY)} LIMIT {int(n)}""").df()
    keys = [tuple(k) for k in d[PAIR_KEY].itertuples(index=False)]
    folder = job.outputs / RunDirectory.explain_dir
    folder.mkdir(parents=True, exist_ok=True)
    page = folder / f"{which}.html"
    title = "Most uncertain pairs" if which == "uncertain" else "Pairs that need review"
    page.write_text(
        f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>{CSS}</style></head><body><h1>{title}: {html.escape(job.settings.name)}</h1>
{pair_sections(job.session, make_linker(job.session.sdfs, model), keys, d, f"{len(keys)} pairs")}</body></html>""",
        encoding="utf-8",
    )
    return page


def explain_pair(job, id_l: str, id_r: str, *, source_l: str | None = None, source_r: str | None = None) -> dict:
    """Score one pair with the run's final model and write its explanation files. `job`: a job whose run is
    finished (see `RunResult.explain`)."""
    model_path = job.outputs / RunDirectory.model
    names = [s.name for s in job.settings.sources]
    sl, sr = job.settings.pair_sources(source_l, source_r)
    key = canonical_key(sl, id_l, sr, id_r)
    linker = make_linker(job.session.sdfs, load_model(model_path))
    scored_pairs = score_pairs(job.session, linker, [key])
    if key not in scored_pairs:
        found = record_lookup(job.con, job.loaded, [key[:2], key[2:]], [])
        k = next(k for k in (key[:2], key[2:]) if k not in found)
        raise InputError(
            f"record {k[1]!r} not found in source {k[0]!r} (sources: {names}); give ids of "
            "records in the sources (--source-l / --source-r choose the sources)."
        )
    left, right, scored = scored_pairs[key]
    chart = linker.visualisations.waterfall_chart([scored], filter_nulls=False)

    decision = decision_record(job, key)

    folder = job.outputs / RunDirectory.explain_dir
    folder.mkdir(parents=True, exist_ok=True)
    stem = "__".join(part.replace("/", "_") for part in key)
    png, page = folder / f"{stem}.png", folder / f"{stem}.html"
    chart.save(str(png))
    how = {
        "match probability (final model)": f"{scored['match_probability']:.4f}",
        "match weight": f"{scored['match_weight']:.2f}",
    }
    if decision:
        how |= {k: v for k, v in decision.items() if k not in ("match_probability", "match_weight")}
    else:
        how["decision"] = "not among the blocked pairs of the run"
    img = base64.b64encode(png.read_bytes()).decode()
    page.write_text(f"""<!doctype html><html><head><meta charset="utf-8"><title>splink_er: {html.escape(stem)}</title>
<style>body{{font-family:sans-serif;margin:2em}} .cols{{display:flex;gap:2em;align-items:flex-start}}
table{{border-collapse:collapse}} th,td{{border:1px solid #ccc;padding:4px 8px;text-align:left}}</style></head>
<body><h2>{html.escape(key[0])}:{html.escape(key[1])} &harr; {html.escape(key[2])}:{html.escape(key[3])}</h2>
<div class="cols"><div><h3>Why the model scores it so (Splink waterfall)</h3>
<img src="data:image/png;base64,{img}" alt="waterfall chart" style="max-width:800px"></div>
<div>{_section("How it was decided", how)}{_section("Left record", left)}{_section("Right record", right)}</div></div>
</body></html>""")
    return {
        "key": key,
        "match_probability": float(scored["match_probability"]),
        "match_weight": float(scored["match_weight"]),
        "decision": decision,
        "png": png,
        "html": page,
    }

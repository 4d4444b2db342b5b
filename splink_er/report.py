"""The run report: `report.html`, one self-contained file that opens offline in any browser.

Charts are rendered to inline SVG by vl-convert (no JavaScript, no CDN), so the page shows the same thing with
or without a network: the summary, accuracy, the model's match weights and m/u values, band and labels per
round, the distribution of match weights with the thresholds drawn in, the most uncertain and the worst pairs
each with its waterfall and the judge's reasoning, and the largest entities.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path

import altair as alt
import pandas as pd
import vl_convert as vlc

from .inference import score_pairs
from .model import make_linker
from .pairs import PAIR_KEY
from .sources import record_lookup

CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222}
h1{margin-bottom:0}.sub{color:#666;margin-top:.2em}section{margin:2em 0}
table{border-collapse:collapse;font-size:14px}th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f5f5f5}.chart svg{max-width:100%;height:auto}.pair{border-top:1px solid #ccc;padding-top:1em;margin-top:1em}
.cols{display:flex;gap:2em;flex-wrap:wrap}.warn{background:#fff4d6;padding:.5em 1em;border-left:4px solid #e6a700}"""


def warm_up() -> None:
    """Start vl-convert's JavaScript engine: its first chart costs half a second, the next ones a tenth."""
    vlc.vegalite_to_svg(json.dumps({"data": {"values": [{"a": 1}]}, "mark": "point"}))


def svg(spec: dict | alt.TopLevelMixin) -> str:
    """A Vega-Lite chart (Altair object or dict) as inline SVG."""
    spec_json = spec.to_json() if hasattr(spec, "to_json") else json.dumps(spec, default=str)
    return f'<div class="chart">{vlc.vegalite_to_svg(spec_json)}</div>'


def table(rows: list[dict] | pd.DataFrame, columns: list[str] | None = None) -> str:
    """An HTML table of `rows`. Dicts are read as they are, not through a DataFrame: a review page draws one small
    table per pair, and building a DataFrame for each was most of a resolve's review file."""
    if isinstance(rows, pd.DataFrame):
        names = columns or list(rows.columns)
        values = rows[names].itertuples(index=False)
    else:
        names = columns or list(dict.fromkeys(k for r in rows for k in r))
        values = ([r.get(c) for c in names] for r in rows)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in names)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in r) + "</tr>" for r in values)
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _weight(p: float) -> float:
    return math.log2(p / (1 - p))


def weights_histogram(histogram: list[dict], low: float, high: float):
    """Match weights of every blocked pair, stacked by how each was decided, thresholds drawn in. `histogram`:
    pairs per (weight bin, decided_by), counted by the run (run.json `weight_histogram`)."""
    df = pd.DataFrame(histogram, columns=["weight", "decided_by", "pairs"])
    bars = (
        alt.Chart(df)
        .mark_bar()
        .encode(
            x=alt.X("weight:Q", title="match weight (log2 odds; capped at ±40)", bin=alt.Bin(step=1)),
            y=alt.Y("sum(pairs):Q", title="pairs", scale=alt.Scale(type="symlog")),
            color=alt.Color("decided_by:N", title="decided by"),
        )
    )
    rules = pd.DataFrame({"weight": [_weight(low), _weight(high)], "label": [f"low {low}", f"high {high}"]})
    lines = alt.Chart(rules).mark_rule(strokeDash=[4, 3], color="black").encode(x="weight:Q")
    text = alt.Chart(rules).mark_text(align="left", dx=4, dy=-120).encode(x="weight:Q", text="label:N")
    return (bars + lines + text).properties(
        width=900, height=260, title="Distribution of match weights with the routing thresholds"
    )


def rounds_chart(rounds: list[dict]):
    rows = []
    for r in rounds:
        rows += [
            {"round": r["round"], "what": "band (before judging)", "pairs": r.get("band", 0)},
            {"round": r["round"], "what": "conflicts", "pairs": r.get("conflicts", 0)},
            {"round": r["round"], "what": "new labels", "pairs": r.get("new_labels", 0)},
            {"round": r["round"], "what": "labels used", "pairs": r.get("labels_used", 0)},
        ]
    return (
        alt.Chart(pd.DataFrame(rows))
        .mark_bar()
        .encode(
            x=alt.X("what:N", title=None, axis=alt.Axis(labelAngle=0)),
            y=alt.Y("pairs:Q"),
            color=alt.Color("what:N", legend=None),
            column=alt.Column("round:O", title="round"),
        )
        .properties(width=220, height=200, title="Band, conflicts and labels per round")
    )


def pair_sections(session, linker, keys: list[tuple], decisions: pd.DataFrame, title: str) -> str:
    """One block per pair: waterfall (final model) beside the records and how the pair was decided."""
    if not keys:
        return f"<h3>{html.escape(title)}</h3><p>none</p>"
    dec = decisions.set_index(PAIR_KEY)
    shown = session.display_columns  # never the truth column
    out = [f"<h3>{html.escape(title)}</h3>"]
    for key, (left, right, scored) in score_pairs(session, linker, keys).items():
        chart = linker.visualisations.waterfall_chart([scored], filter_nulls=False)
        d = dec.loc[key].to_dict() if key in dec.index else {}
        how = {
            k: d.get(k)
            for k in (
                "decided_by",
                "final_match",
                "match_probability",
                "judge_match",
                "judge_confidence",
                "judge_reasoning",
                "label_source",
                "round",
            )
        }
        records = pd.DataFrame(
            {"field": shown, "left": [left.get(c) for c in shown], "right": [right.get(c) for c in shown]}
        )
        out.append(
            f'<div class="pair"><b>{html.escape(":".join(key[:2]))} &harr; {html.escape(":".join(key[2:]))}'
            f'</b><div class="cols"><div>{svg(chart.chart_dict)}</div><div>'
            f"{table([{'': k, 'value': v} for k, v in how.items()])}<br>{table(records)}</div></div></div>"
        )
    return "".join(out)


def audit_section(audit: dict, truth: dict) -> str:
    """The audit's estimates with their 95% intervals (and the truth, when known, as a tick)."""
    if not audit.get("f1"):
        return (
            "<p>No audit: set <code>audit.size</code> (e.g. 400) to estimate precision and recall from a "
            "judged sample, with 95% intervals, when there is no truth.</p>"
        )
    rows = [
        {
            "metric": k,
            "estimate": audit[k]["estimate"],
            "lo": audit[k]["ci95"][0],
            "hi": audit[k]["ci95"][1],
            "truth": truth.get(k),
        }
        for k in ("precision", "recall", "f1")
    ]
    df = pd.DataFrame(rows)
    base = alt.Chart(df).encode(y=alt.Y("metric:N", sort=None, title=None))
    chart = base.mark_rule(strokeWidth=3).encode(
        x=alt.X("lo:Q", scale=alt.Scale(zero=False), title="estimate, 95% interval"), x2="hi:Q"
    ) + base.mark_point(filled=True, size=80).encode(x="estimate:Q")
    if truth:
        chart += base.mark_tick(color="#d62728", thickness=2, size=18).encode(x="truth:Q")
    o = audit.get("outside_blocking")
    probe = (
        f"<p>Outside blocking: {o['matches_found']} matches among {o['random_pairs_judged']} random pairs of "
        f"{o['possible_pairs']:,} possible (at most about {o['upper_95']:,} missed, 95%).</p>"
        if o
        else ""
    )
    design = (audit.get("design_only") or {}).get("f1")
    design_note = (
        f"<p>From the audit answers alone, trusting no model probability: F1 {design['estimate']} "
        f"[{design['ci95'][0]}, {design['ci95'][1]}].</p>"
        if design
        else ""
    )
    return (
        f"<h3>Estimated from the audit sample</h3><p>{audit['pairs_judged']} pairs judged after the decisions, "
        "stratified by decision and probability, never used for training: precision, recall and F1 of the "
        f"decisions within blocking, with 95% intervals ({audit.get('method', 'design-only')})"
        + (" (the truth as a red tick)" if truth else "")
        + f".</p>{svg(chart.properties(width=420, height=90))}{table(rows)}{design_note}{probe}"
    )


def entity_summary(run: dict) -> str:
    """What the run changed in the entity store (the change feed's counts), and the canonical layer's size."""
    changes = run.get("entity_changes") or {}
    if not changes:
        parts = ["<p>Entity ids are this run's cluster ids (<code>entities.enabled: false</code>).</p>"]
    else:
        events = changes.get("events") or {}
        rows = [{"event": k, "count": f"{v:,}"} for k, v in sorted(events.items())]
        parts = [
            f"<p>Stable entity ids from the store <code>{html.escape(changes['store'])}</code>. What this run "
            "changed (<code>entity_changes.parquet</code>; <code>splink-er entities changes</code>):</p>",
            table(rows) if rows else "<p>nothing: every entity kept its id and its records.</p>",
        ]
    checks = run.get("verification") or {}
    if checks:
        parts.append(
            "<p>Entity checks (<code>verification.json</code>): "
            + ", ".join(f"{html.escape(k)}: {v:,} entities" for k, v in checks.items())
            + ". Contradictions are entities that held two records a judge, a person or a gate decided are "
            "different (<code>verify.contradictions</code>).</p>"
        )
    reg = run.get("registry") or {}
    if reg:
        parts.append(
            "<p>Canonical layer: "
            + ", ".join(f"{k} {v:,} rows" for k, v in reg.items())
            + " (<code>entities.parquet</code>, <code>aliases.parquet</code>, <code>chains.parquet</code>, "
            "<code>records.parquet</code>).</p>"
        )
    return "".join(parts)


def write_report(session, model: dict, run: dict, path: Path, n_pairs: int = 5) -> Path:
    """Write report.html for a finished job (its DuckDB relations `decisions_kept` and `clusters` are still open)."""
    s = session.settings
    con = session.con
    linker = make_linker(session.sdfs, model)
    j = run["judge"]
    summary = {
        "inputs": ", ".join(f"{k}: {v:,} records" for k, v in run["input_sizes"].items()),
        "link type": run["link_type"],
        "blocked pairs": f"{run['blocked_pairs']:,}",
        "rounds": len(run["rounds"]),
        "final matches": f"{run['final_matches']:,}",
        "entities": f"{run['entities']:,}",
        "decided by": ", ".join(f"{k} {v:,}" for k, v in sorted(run["decided_by"].items())),
        "judge": j["description"],
        "judge calls": j["calls"],
        "pairs judged": j["pairs_judged"],
        "tokens in / out": f"{j['usage'].get('input_tokens', 0):,} / {j['usage'].get('output_tokens', 0):,}"
        + (" (estimated)" if j["tokens_estimated"] else ""),
        "cost (USD)": f"{j['cost_usd']:.4f}",
        "wall time (s)": run["wall_seconds"]["total"],
        "run id": run["run_id"],
    }
    m = run["metrics"]
    if m:
        accuracy = (
            f"<p>Against the truth column <code>{html.escape(str(s.truth_column))}</code>: precision "
            f"<b>{m['precision']:.4f}</b>, recall <b>{m['recall']:.4f}</b>, F1 <b>{m['f1']:.4f}</b> "
            f"(blocking recall {m['blocking_recall']:.4f}).</p>"
        )
        per_round = [
            {"round": r["round"], **{k: r["metrics"].get(k) for k in ("precision", "recall", "f1")}}
            for r in run["rounds"]
            if r.get("metrics")
        ]
        accuracy += table(per_round) if per_round else ""
    else:
        accuracy = (
            '<p class="warn">No truth column: precision and recall are not known for this run. The '
            "pairs below and the review queue (<code>splink-er review export</code>) show where to look.</p>"
        )
    accuracy += audit_section(run.get("audit") or {}, m)
    simulated = (
        '<p class="warn">The judge of this run is SIMULATED (answers from a ground-truth column).</p>'
        if j["simulated"]
        else ""
    )
    # Picked in DuckDB: decisions has one row per blocked pair, far too many to pull into pandas.
    key = ", ".join(PAIR_KEY)
    # Most uncertain: undecided band pairs nearest 0.5, then the least confident judge answers.
    uncertain = con.execute(
        f"SELECT * FROM decisions_kept WHERE needs_review ORDER BY abs(match_probability - 0.5), {key} LIMIT {n_pairs}"
    ).df()
    if len(uncertain) < n_pairs:
        judged = con.execute(
            f"SELECT * FROM decisions_kept WHERE decided_by = 'judge' ORDER BY judge_confidence, {key} "
            f"LIMIT {n_pairs - len(uncertain)}"
        ).df()
        uncertain = pd.concat([uncertain, judged]) if len(uncertain) else judged
    # Worst: where the judge (or a human) most strongly overruled the model.
    worst = con.execute(f"""SELECT * FROM decisions_kept WHERE judge_match IS NOT NULL
        AND abs(CAST(judge_match AS DOUBLE) - match_probability) > 0.5
        ORDER BY abs(CAST(judge_match AS DOUBLE) - match_probability) DESC, {key} LIMIT {n_pairs}""").df()
    decisions = pd.concat([uncertain, worst]).drop_duplicates(PAIR_KEY)
    sizes = con.execute(
        "SELECT entity_id, count(*) AS records FROM clusters GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 5"
    ).df()
    cols = [c for c in session.display_columns if c not in ("unique_id", "source_dataset")][:8]
    entity_blocks = []
    for e in sizes.itertuples(index=False):
        members = con.execute(
            "SELECT source_dataset, unique_id FROM clusters WHERE entity_id = ? ORDER BY 1, 2", [e.entity_id]
        ).fetchall()
        recs = record_lookup(con, session.loaded, [tuple(map(str, k)) for k in members[:50]], cols)
        rows = [{"source": k[0], "id": k[1], **recs.get(k, {})} for k in (tuple(map(str, m)) for m in members[:50])]
        entity_blocks.append(
            f'<h3 id="entity-{html.escape(str(e.entity_id))}">Entity '
            f"{html.escape(str(e.entity_id))}: {e.records} records</h3>{table(rows)}"
        )
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>splink_er report: {html.escape(s.name)}</title><style>{CSS}</style></head><body>
<h1>{html.escape(s.name)}</h1><p class="sub">splink_er run report, {html.escape(run["run_id"])}</p>{simulated}
<nav><a href="#summary">Summary</a> · <a href="#accuracy">Accuracy</a> · <a href="#model">Model</a> ·
<a href="#rounds">Rounds</a> · <a href="#distribution">Distribution</a> · <a href="#pairs">Pairs</a> ·
<a href="#entities">Entities</a></nav>
<section id="summary"><h2>Summary</h2>{table([{"": k, "value": v} for k, v in summary.items()])}</section>
<section id="accuracy"><h2>Accuracy</h2>{accuracy}</section>
<section id="model"><h2>Model</h2><p>Match weights of the final model (how much each comparison level moves
the odds), and its m and u probabilities.</p>{svg(linker.visualisations.match_weights_chart().chart_dict)}
{svg(linker.visualisations.m_u_parameters_chart().chart_dict)}</section>
<section id="rounds"><h2>Rounds</h2>{svg(rounds_chart(run["rounds"])) if run["rounds"] else "<p>no rounds</p>"}
{
        table(
            [
                {
                    k: r.get(k)
                    for k in (
                        "round",
                        "band",
                        "conflicts",
                        "new_labels",
                        "labels_used",
                        "accepted",
                        "rejected",
                        "judge_budget_left",
                        "seconds",
                        "stopped",
                    )
                }
                for r in run["rounds"]
            ]
        )
    }</section>
<section id="distribution"><h2>Distribution</h2>{
        svg(weights_histogram(run["weight_histogram"], s.routing.low, s.routing.high))
    }</section>
<section id="pairs"><h2>Pairs to look at</h2>
{
        pair_sections(
            session,
            linker,
            [tuple(k) for k in uncertain[PAIR_KEY].itertuples(index=False)],
            decisions,
            "Most uncertain",
        )
    }
{
        pair_sections(
            session,
            linker,
            [tuple(k) for k in worst[PAIR_KEY].itertuples(index=False)],
            decisions,
            "Worst: where the judge most strongly overruled the model",
        )
    }</section>
<section id="entities"><h2>Entities</h2>{entity_summary(run)}
<h3>Largest entities</h3>{"".join(entity_blocks) or "<p>none</p>"}</section>
</body></html>"""
    path.write_text(page, encoding="utf-8")
    return path

"""Explain a pair: Splink's waterfall chart beside the decision and the judge's reasoning.

Writes `<out>/explain/<pair>.png` (the waterfall) and `<out>/explain/<pair>.html`, a self-contained page (the PNG
is inlined, so it opens offline) with the chart, the two records and how the pair was decided.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

import pandas as pd

from .labels import canonical_key
from .loop import prepare
from .model import load_model, make_linker
from .sources import record_lookup


def _row_html(title: str, rows: dict) -> str:
    cells = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows.items())
    return f"<h3>{html.escape(title)}</h3><table>{cells}</table>"


def explain_pair(settings, id_l: str, id_r: str, *, source_l: str | None = None, source_r: str | None = None,
                 overrides: list[str] | None = None) -> dict:
    """Score one pair with the run's final model and write its explanation files.

    Example:
        >>> import splink_er
        >>> from splink_er.explain import explain_pair
        >>> o = ["output_dir=/tmp/se_explain", "labels.path=/tmp/se_explain/labels.jsonl"]
        >>> _ = splink_er.run(splink_er.demo_settings_path(), overrides=o, quiet=True)
        >>> res = explain_pair(splink_er.demo_settings_path(), "0", "1", overrides=o)
        >>> res["png"].exists() and 0 <= res["match_probability"] <= 1
        True
    """
    job = prepare(settings, overrides=overrides, quiet=True)
    model_path = job.out / "model.json"
    if not model_path.exists():
        raise FileNotFoundError(f"{model_path} not found: run `splink-er run` with these settings (and --out) first.")
    names = [s.name for s in job.settings.sources]
    sl, sr = source_l or names[0], source_r or names[-1]
    key = canonical_key(sl, id_l, sr, id_r)
    all_cols = sorted({c for cols in job.loaded.columns.values() for c in cols})
    recs = record_lookup(job.con, job.loaded, [key[:2], key[2:]], all_cols)
    for k in (key[:2], key[2:]):
        if k not in recs:
            raise FileNotFoundError(f"record {k[1]!r} not found in source {k[0]!r} (sources: {names}).")
    left = {"unique_id": key[1], "source_dataset": key[0]} | recs[key[:2]]
    right = {"unique_id": key[3], "source_dataset": key[2]} | recs[key[2:]]

    linker = make_linker(job.sdfs, load_model(model_path))
    frame = linker.inference.score_pair(left, right).as_pandas_dataframe()
    scored = {k: (None if pd.isna(v) else v) for k, v in frame.iloc[0].to_dict().items()}
    chart = linker.visualisations.waterfall_chart([scored], filter_nulls=False)

    decision = None
    dec_path = job.out / "decisions.parquet"
    if dec_path.exists():
        d = pd.read_parquet(dec_path, filters=[("unique_id_l", "==", key[1]), ("unique_id_r", "==", key[3])])
        d = d[(d.source_dataset_l == key[0]) & (d.source_dataset_r == key[2])]
        if len(d):
            decision = d.iloc[0].to_dict()

    folder = job.out / "explain"
    folder.mkdir(parents=True, exist_ok=True)
    stem = "__".join(part.replace("/", "_") for part in key)
    png, page = folder / f"{stem}.png", folder / f"{stem}.html"
    chart.save(str(png))
    how = {"match probability (final model)": f"{scored['match_probability']:.4f}",
           "match weight": f"{scored['match_weight']:.2f}"}
    if decision:
        how |= {k: decision[k] for k in ("decided_by", "final_match", "needs_review", "judge_match",
                                          "judge_confidence", "judge_reasoning", "label_source", "round")}
    else:
        how["decision"] = "not among the blocked pairs of the run"
    img = base64.b64encode(png.read_bytes()).decode()
    page.write_text(f"""<!doctype html><html><head><meta charset="utf-8"><title>splink_er: {html.escape(stem)}</title>
<style>body{{font-family:sans-serif;margin:2em}} .cols{{display:flex;gap:2em;align-items:flex-start}}
table{{border-collapse:collapse}} th,td{{border:1px solid #ccc;padding:4px 8px;text-align:left}}</style></head>
<body><h2>{html.escape(key[0])}:{html.escape(key[1])} &harr; {html.escape(key[2])}:{html.escape(key[3])}</h2>
<div class="cols"><div><h3>Why the model scores it so (Splink waterfall)</h3>
<img src="data:image/png;base64,{img}" alt="waterfall chart" style="max-width:800px"></div>
<div>{_row_html("How it was decided", how)}{_row_html("Left record", left)}{_row_html("Right record", right)}</div></div>
</body></html>""")
    return {"key": key, "match_probability": float(scored["match_probability"]),
            "match_weight": float(scored["match_weight"]), "decision": decision, "png": png, "html": page}

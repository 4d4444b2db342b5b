"""The review queue: pairs a person should decide, out to CSV/HTML and back in as human labels.

`export` writes the needs_review and conflict pairs of a finished run, both records side by side with the
model's view and the judge's answer, and an empty `answer` column. `import_answers` reads the file back: each
answered row becomes a human label (human labels beat judge labels), blank rows are skipped, anything else is an
error naming the row. `retrain` then uses the new labels.
"""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from .errors import InputError
from .labels import MATCH_WORDS, NON_MATCH_WORDS, LabelStore, make_label
from .locks import writing
from .outputs import RunDirectory
from .pairs import PAIR_KEY
from .report import CSS, table
from .sources import check_records_exist, record_lookup
from .sql import sql_literal


class ReviewFileError(InputError):
    """The answered review file cannot be read; the message names the rows and what to write."""


def export(job, *, limit: int | None = None) -> dict:
    """Write `<out>/review/review_queue.csv` and `.html`; returns their paths and the number of pairs. `job`: a
    job whose run is finished (see `RunResult.review`)."""
    path = job.outputs / RunDirectory.decisions
    # Nearest the decision boundary first: where a person's answer changes the most. Filtered in DuckDB, so
    # only the queue (not every blocked pair) reaches pandas.
    queue = job.con.execute(f"""SELECT * FROM read_parquet({sql_literal(path)})
        WHERE needs_review OR (conflict AND decided_by <> 'human')
        ORDER BY abs(match_probability - 0.5), {", ".join(PAIR_KEY)} {f"LIMIT {int(limit)}" if limit else ""}""").df()
    folder = job.outputs / RunDirectory.review_dir
    folder.mkdir(parents=True, exist_ok=True)
    csv, kept = _free_review_file(folder)
    page = write_queue(job, queue, csv)
    return {"csv": csv, "html": page, "pairs": len(queue), "kept": kept}


def write_queue(job, queue: pd.DataFrame, csv: Path) -> Path:
    """The review file for `queue` (decisions rows): `csv`, and the same pairs side by side in an HTML page
    beside it (returned). Used by `export` and by `resolve` for the pairs of records it sends to review."""
    keys = [tuple(k) for k in queue[PAIR_KEY].itertuples(index=False)]
    cols = job.session.display_columns
    recs = record_lookup(job.con, job.loaded, [k[:2] for k in keys] + [k[2:] for k in keys], cols)
    out = (
        queue[
            PAIR_KEY
            + ["match_probability", "decided_by", "final_match", "judge_match", "judge_confidence", "judge_reasoning"]
        ]
        .rename(columns={"final_match": "model_guess"})
        .reset_index(drop=True)
    )
    out.insert(4, "answer", "")
    out.insert(5, "note", "")
    for c in cols:
        out[f"left_{c}"] = [recs.get(k[:2], {}).get(c) for k in keys]
        out[f"right_{c}"] = [recs.get(k[2:], {}).get(c) for k in keys]
    page = csv.with_suffix(".html")
    out.to_csv(csv, index=False)
    blocks = []
    for i, r in enumerate(out.to_dict("records")):
        side = [{"field": c, "left": r[f"left_{c}"], "right": r[f"right_{c}"]} for c in cols]
        judge = (
            f"judge: {'match' if r['judge_match'] else 'non-match'} ({r['judge_confidence']:.2f}) {r['judge_reasoning']}"
            if pd.notna(r["judge_match"])
            else f"judge: {r['judge_reasoning'] or 'not asked'}"
        )
        blocks.append(
            f"<h3>Row {i + 2} of the CSV: {html.escape(r['unique_id_l'])} &harr; {html.escape(r['unique_id_r'])}"
            f"</h3><p>model: p = {r['match_probability']:.3f} (guess: {'match' if r['model_guess'] else 'non-match'})"
            f"; {html.escape(judge)}</p>{table(side)}"
        )
    page.write_text(
        f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Review queue:
{html.escape(job.settings.name)}</title><style>{CSS}</style></head><body><h1>Review queue: {html.escape(job.settings.name)}</h1>
<p>{len(out)} pairs. Write <code>match</code> or <code>non-match</code> in the <code>answer</code> column of
<code>{html.escape(csv.name)}</code> (leave it blank to skip), then run
<code>splink-er review import SETTINGS {html.escape(str(csv))}</code> and <code>splink-er retrain SETTINGS</code>.</p>
{"".join(blocks)}</body></html>""",
        encoding="utf-8",
    )
    return page


def _answered(csv: Path) -> int:
    """Answers a person has written into a review file (0 if it cannot be read as one)."""
    try:
        answers = pd.read_csv(csv, dtype=str, keep_default_na=False, usecols=["answer"])["answer"]
    except (ValueError, OSError, pd.errors.ParserError):
        return 0
    return int(answers.str.strip().ne("").sum())


def _free_review_file(folder: Path) -> tuple[Path, list[Path]]:
    """review_queue.csv, unless a person has answered rows in it: then the next review_queue_N.csv, and the files
    with answers (kept as they are: an export never overwrites answers)."""
    kept, n = [], 1
    while True:
        csv = folder / ("review_queue.csv" if n == 1 else f"review_queue_{n}.csv")
        if not csv.exists() or not _answered(csv):
            return csv, kept
        kept.append(csv)
        n += 1


def import_answers(settings, file: str | Path, *, overrides: list[str] | None = None) -> dict:
    """Store each answered row of a review file as a human label; returns counts."""
    from .settings import load_settings

    s = load_settings(settings, overrides)
    file = Path(file)
    if not file.exists():
        raise InputError(f"{file}: no such review file (write one with `splink-er review export`)")
    df = pd.read_csv(file, dtype=str, keep_default_na=False)
    missing = [c for c in PAIR_KEY + ["answer"] if c not in df.columns]
    if missing:
        raise ReviewFileError(f"{file}: columns {missing} are missing; answer in the file `review export` wrote")
    answers = df["answer"].str.strip().str.lower()
    bad = [f"row {i + 2} ({v!r})" for i, v in answers.items() if v and v not in MATCH_WORDS | NON_MATCH_WORDS]
    if bad:
        raise ReviewFileError(
            f"{file}: answers must be match or non-match (or blank to skip); not understood: "
            + ", ".join(bad[:20])
            + (" ..." if len(bad) > 20 else "")
        )
    labels = []
    for i, r in df[answers.ne("")].iterrows():
        note = r.get("note", "") or ""
        labels.append(
            make_label(
                tuple(r[k] for k in PAIR_KEY),
                answers[i] in MATCH_WORDS,
                1.0,
                "human",
                "human",
                reason="review",
                reasoning=note or f"review file {file.name}",
            )
        )
    keys = [tuple(label[k] for k in PAIR_KEY) for label in labels]
    check_records_exist(s, [k[:2] for k in keys] + [k[2:] for k in keys])
    with writing(s.label_store_path, "label store", s.labels.wait_seconds):
        LabelStore(s.label_store_path).append(labels)
    return {"answered": len(labels), "skipped": int(answers.eq("").sum()), "label_store": s.label_store_path}

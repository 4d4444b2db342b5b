"""Writes the notebooks in this folder from the cell sources below (run it after editing them):

    python notebooks/build_notebooks.py

Keeping the sources here makes notebook changes reviewable as code; CI executes the .ipynb files top to bottom.
"""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
OUT = "runs/notebooks"  # relative to this folder (git ignores runs/)

NOTEBOOKS = {
    "quickstart.ipynb": [
        "# splink_er quick start\n"
        "Run the bundled demo (Splink's fake_1000 persons, deduplicated), look at the decisions, explain a pair.\n"
        "The judge is **SIMULATED** from the ground-truth `cluster` column; with `GEMINI_API_KEY` set, use "
        "`judge.kind=gemini` instead.",
        f"import splink_er\n"
        f"result = splink_er.run(splink_er.demo_settings_path(), quiet=True,\n"
        f"                       overrides=['output_dir={OUT}/quickstart', 'labels.path={OUT}/quickstart/labels.jsonl'])\n"
        f"result.metrics",
        "## Decisions\nOne row per blocked pair: how it was decided (model accept / reject, judge, needs_review), "
        "the final match, and the judge's reasoning where there is one.",
        "d = result.decisions\nd['decided_by'].value_counts()",
        "d[d['decided_by'] == 'judge'][['unique_id_l', 'unique_id_r', 'match_probability', 'judge_match',\n"
        "                               'judge_confidence', 'judge_reasoning']].head()",
        "## Explain a pair\nSplink's waterfall chart for the pair (why the model scores it so), beside how it was "
        "decided. The HTML page works offline.",
        "pair = d[d['decided_by'] == 'judge'].iloc[0]\n"
        "exp = result.explain(pair.unique_id_l, pair.unique_id_r)  # scored on the inputs already loaded\n"
        "from IPython.display import Image\nImage(filename=str(exp['png']))",
        "## The run report\n`report.html` beside the outputs: summary, model charts, rounds, the distribution of "
        "match weights, uncertain pairs with their waterfalls, the largest entities.",
        "print(result.output_dir / 'report.html')",
    ],
    "active_learning.ipynb": [
        "# The active-learning loop, step by step\n"
        "FEBRL 4 (5,000 + 5,000 synthetic persons). Each step is one method of `Job`; the charts show what each "
        "round bought. The judge is **SIMULATED** from the truth column (`judge.kind=truth`).",
        f"import altair as alt, pandas as pd, splink_er\n"
        f"job = splink_er.prepare('../settings/febrl4.yaml', quiet=True, overrides=[\n"
        f"    'judge.kind=truth', 'output_dir={OUT}/active', 'labels.path={OUT}/active/labels.jsonl'])\n"
        "job.bootstrap()\nscores = job.score()  # a handle on every blocked pair's score, kept in DuckDB\n"
        "plain = job.metrics_for_scores(scores, 'match_probability >= 0.5')\n"
        "plain  # plain unsupervised Splink (the bootstrap model at p >= 0.5)",
        "## 1. Sample pairs stratified by how sure the model is\n"
        "Every pair's inclusion probability is known, so the labels give unbiased (Horvitz-Thompson) estimates.",
        "sample = job.sample()\nsample.groupby('stratum').agg(pairs=('stratum', 'size'),\n"
        "                                mean_p=('match_probability', 'mean'))",
        "## 2. The judge labels them; 3. train Splink's match weights from the labels\n"
        "A logistic correction per comparison level, with the bootstrap weights as offset, written back into the "
        "Splink model (`training.method: logistic`).",
        "job.judge_pairs(sample, reason='sample')\njob.train()",
        "## 4. Score every blocked pair; route: accept >= 0.95, reject <= 0.10, the band between goes to the judge",
        "scores = job.score()\njob.route()",
        "# Binned in DuckDB: the scores have one row per blocked pair (160k here); only the bins reach pandas.\n"
        "bins = scores.df('SELECT floor(match_probability * 20) / 20 AS p, count(*) AS pairs '\n"
        "                 'FROM {this} GROUP BY 1 ORDER BY 1')\n"
        "alt.Chart(bins).mark_bar().encode(x=alt.X('p:Q', title='match probability (bins of 0.05)'),\n"
        "    y=alt.Y('pairs:Q', scale=alt.Scale(type='symlog'))).properties(title='Match probabilities after training')",
        "## 5. Judge the band, feed the answers back, and repeat\n"
        "`limit` caps this round's answers (`loop.band_per_round` in a run); the next round retrains on them first.",
        "job.judge_band(limit=200)\njob.inference.route_counts()  # pairs per route once the answers count",
        "job.run_rounds(sample_rounds=0, max_rounds=2)\n"
        "rounds = pd.DataFrame([{'round': r['round'], 'band': r['band'], 'new labels': r['new_labels'],\n"
        "                        'F1': r['metrics'].get('f1')} for r in job.rounds])\nrounds",
        "result = job.finish()\n"
        "print(f\"plain Splink F1 {plain['f1']:.4f} -> loop F1 {result.metrics['f1']:.4f} with \"\n"
        "      f\"{result.run['judge']['pairs_judged']} pairs judged\")",
    ],
    "election.ipynb": [
        "# Election example: ballot names to legal names\n"
        'North Carolina candidate filings: the name printed on the ballot ("Milton F. (Toby) Fitch, Jr.") is linked '
        "to the candidate's legal name (MILTON FREDERICK FITCH, suffix JR) within the same contest, one-to-one. "
        "The judge is **SIMULATED** from the `candidacy` column; the preset's matching rules for a real LLM are "
        "the election-candidate ones (nicknames, Jr. vs Sr., fusion lines).",
        f"import splink_er\n"
        f"result = splink_er.run('../settings/nc_ballot_legal.yaml', quiet=True, overrides=[\n"
        f"    'judge.kind=truth', 'output_dir={OUT}/election', 'labels.path={OUT}/election/labels.jsonl'])\n"
        "result.metrics",
        "## Conflicts\nWith `routing.one_to_one`, a ballot name with two or more confident legal-name candidates is "
        "a conflict; the judge is asked which candidate, if any.",
        "d = result.decisions\nd['decided_by'].value_counts()",
        "cols = ['unique_id_l', 'unique_id_r', 'match_probability', 'decided_by', 'final_match', 'judge_reasoning']\n"
        "d[d['conflict']][cols].head(10)",
        "## The prompt a real LLM judge would get\nRules come from `judge.domain` in the preset.",
        "from splink_er.judges.prompt import system_instruction\n"
        "job = splink_er.prepare('../settings/nc_ballot_legal.yaml', quiet=True, overrides=['judge.kind=none'])\n"
        "print(system_instruction(job.settings.judge.domain, show_score=False))",
    ],
}


def build() -> None:
    for name, cells in NOTEBOOKS.items():
        nb = new_notebook(
            cells=[new_markdown_cell(c) if c.startswith("#") else new_code_cell(c) for c in cells],
            metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        )
        nbformat.write(nb, HERE / name)


if __name__ == "__main__":
    build()

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
    "new_link_task.ipynb": [
        """# A new link task, from raw files to settings

The task: which candidates of the 2012 congressional general elections ran again in 2014? Two sources, one file
each year, both the FEC's official results as compiled by OpenElections (`data/fec`, MIT licence). Names arrive as
`"Last, First M. #"`, parties as codes (`D`, `R`, `WF`, `N(R)`, `D/WF Combined Parties`), and a candidate on two
party lines has one row per line. The truth, `fec_id` (the FEC candidate ID), is used only to score the result and
by the **SIMULATED** judge below, which answers from it instead of calling an LLM.

Each step is what a new user does: look at the values, normalize them with the shipped `prepare` kinds, decide
what one record means, write the settings, run without a judge, then with one.""",
        """import pandas as pd

import splink_er
from splink_er.normalize.parties import parse_party, unmapped

raw = pd.read_csv("../data/fec/fec_2008_2014.csv", dtype=str)
raw[["year", "chamber", "state", "district", "candidate_name", "party", "general_votes"]].head()""",
        """## 1. Look at the values the parsers will read

The `party` prepare kind maps party words and codes to one code from a reviewed table; anything it cannot read
gets no code (never a guess), and `unmapped` lists those values. Names go through `person_name`, which reads
`"Last, First M."`, drops the results-file markers (`#`, `*`) and splits suffixes and nicknames.""",
        """print("party values the table cannot read:", unmapped(raw.party.dropna().unique()))
pd.DataFrame([parse_party(v) | {"value": v} for v in ["D*", "WF", "N(R)", "W(D)", "D/WF Combined Parties"]])""",
        """## 2. Decide what one record is

A candidacy is one person in one race, but a candidate on two party lines (Rosa DeLauro on the Democratic and the
Working Families lines) has two rows in the same year. Linking with `routing.one_to_one` keeps one match per
record, so the second line would be rejected as `one_to_one` and counted as a missed match. Here one row per
candidacy is wanted: keep each candidate's line with the most votes.""",
        """earlier, later = raw[raw.year == "2012"], raw[raw.year == "2014"]
print(earlier[earlier.candidate_name.str.startswith("DeLauro")][["candidate_name", "party", "general_votes"]])


def one_row_per_candidacy(df: pd.DataFrame) -> pd.DataFrame:
    votes = pd.to_numeric(df.general_votes, errors="coerce").fillna(0)
    keys = ["chamber", "state", "district", "candidate_name"]
    return df.assign(votes=votes).sort_values("votes").drop_duplicates(keys, keep="last").drop(columns="votes")


data = {"fec2012": one_row_per_candidacy(earlier), "fec2014": one_row_per_candidacy(later)}
{name: (len(df), len(raw[raw.year == name[3:]])) for name, df in data.items()}""",
        """## 3. Write the settings

- **sources**: the same normalizers on both sides; `district_norm` makes `"01"` and `"1"` one district, and a
  Senate race district `S`.
- **comparisons**: `PersonName` (exact, canonical first name such as Bob = Robert, nicknames, Jaro-Winkler
  levels), `Party` (its fusion level comes from the shipped fusion pairs because the column is a `party` step's
  code), and the seat as custom SQL levels.
- **blocking**: pairs that share a state and a surname, or a state, a canonical first name and a district.
- **routing**: one match per record (`one_to_one`), and a gate: the FEC gives a candidate one ID per office, so a
  House row never matches a Senate row.""",
        """def source(name: str) -> dict:
    return {
        "name": name,
        "id_column": "row_id",
        "prepare": [
            {"column": "candidate_name", "kind": "person_name"},
            {"column": "party", "kind": "party"},
        ],
        "derive": {"district_norm": "CASE WHEN chamber = 'S' THEN 'S' ELSE ltrim(district, '0') END"},
    }


settings = {
    "name": "fec_2012_to_2014",
    "link_type": "link_only",
    "sources": [source("fec2012"), source("fec2014")],
    "truth_column": "fec_id",
    "comparisons": [
        {"kind": "PersonName"},
        {"kind": "Party", "args": {"column": "party_norm"}},
        {
            "kind": "custom",
            "output_column_name": "seat",
            "levels": [
                {"sql": "chamber_l IS NULL OR chamber_r IS NULL", "null_level": True, "label": "chamber missing"},
                {"sql": "chamber_l = chamber_r AND district_norm_l = district_norm_r", "label": "same seat"},
                {"sql": "chamber_l = chamber_r", "label": "same chamber, other district"},
                {"sql": "ELSE", "label": "other chamber"},
            ],
        },
    ],
    "blocking_rules": [["state", "last_name"], ["state", "first_name_canonical", "district_norm"]],
    "bootstrap": {
        "deterministic_rules": [["state", "chamber", "district_norm", "last_name", "first_name"]],
        "recall": 0.7,
        "em_blocking_rules": [["state", "last_name"], ["state", "chamber", "district_norm"]],
    },
    "routing": {"one_to_one": True, "gates": [{"name": "other_chamber", "sql": "chamber_l <> chamber_r"}]},
    "judge": {"kind": "none"},
    "output_dir": "runs/notebooks/new_link_task",
    "labels": {"path": "runs/notebooks/new_link_task/labels.jsonl"},
}
splink_er.load_settings(settings).routing""",
        """## 4. Run without a judge

The model alone: pairs at or above `routing.high` are accepted, at or below `routing.low` rejected, the band
between waits for review (its `final_match` is the model's guess). `metrics` scores the final matches against
`fec_id`, over the rows kept in step 2.""",
        """alone = splink_er.run(settings, data=data, quiet=True)
print({k: round(alone.metrics[k], 3) for k in ("precision", "recall", "f1")})
alone.run["decided_by"]""",
        """## 5. Run with a judge

Here the judge is **SIMULATED** (`kind: truth`: it answers from `fec_id`, with confidence 1.0). With a key in
`GEMINI_API_KEY`, `{"kind": "gemini"}` asks Gemini the same questions; any OpenAI-compatible endpoint works with
`{"kind": "openai", "base_url": ...}`. Only the band and the one-to-one conflicts are asked, up to `max_pairs`.""",
        """settings["judge"] = {"kind": "truth", "max_pairs": 300}
judged = splink_er.run(settings, data=data, quiet=True)
print({k: round(judged.metrics[k], 3) for k in ("precision", "recall", "f1")}, "pairs judged:", judged.run["judge"]["pairs_judged"])
judged.run["decided_by"]""",
        """## 6. The table a downstream job joins on

`gold.parquet` has one row per record of the first source: its best match in the other source or none, the stage
that decided (model, llm, gate, one_to_one, review; none when no pair was a candidate), the confidence and the
reasoning. `report.html` in the output directory shows the waterfall charts beside the judge's reasoning.""",
        """gold = pd.read_parquet(judged.output_dir / "gold.parquet")
print(gold.stage.value_counts().to_dict())
gold[gold.has_match][["unique_id", "match_unique_id", "stage", "confidence", "reasoning"]].head()""",
        """## From the command line\nTo run it from the command line, write the dict as YAML (`yaml.safe_dump(settings)`) with a `path:` per
source, and run `splink-er run fec_2012_to_2014.yaml`.""",
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

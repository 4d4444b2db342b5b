"""Builds fec_2008_2014.csv from ../shared/datasets/fec_results (run from the repo root):

    python data/fec/build.py

Keeps House and Senate result rows of 2008-2014 that have an FEC candidate ID (the truth for cross-cycle
deduplication) and adds a row_id. Source: the FEC's official results compiled by OpenElections (MIT, LICENSE.txt).
"""

from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[2]
src = REPO.parent / "shared" / "datasets" / "fec_results" / "fec_congress_results_2000_2014.csv"
df = pd.read_csv(src, dtype=str)
df = df[df["year"].astype(int).between(2008, 2014) & df["fec_id"].notna()].copy()
df.insert(0, "row_id", [f"F{i:05d}" for i in range(1, len(df) + 1)])
cols = [
    "row_id",
    "year",
    "chamber",
    "state",
    "district",
    "fec_id",
    "incumbent",
    "candidate_last",
    "candidate_first",
    "candidate_suffix",
    "candidate_name",
    "party",
    "general_votes",
    "general_winner",
]
df[cols].to_csv(Path(__file__).parent / "fec_2008_2014.csv", index=False)
print(len(df), "rows,", df["fec_id"].nunique(), "candidates")

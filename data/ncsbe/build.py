"""Build the two sides of the NC ballot-name <-> legal-name task from the NCSBE candidate filings.

Source: ncsbe_candidacies_2020_2025.csv (public records of the North Carolina State Board of Elections).
Each candidacy becomes one ballot-side record (name as printed on the ballot) and one registration-side record
(legal first/middle/last name, suffix, nickname), both with the contest they belong to. The shared `candidacy`
number is the ground truth; record ids are shuffled per side so that they reveal nothing.

    python data/ncsbe/build.py ../shared/datasets/ncsbe/ncsbe_candidacies_2020_2025.csv data/ncsbe
"""

import sys
from pathlib import Path

import pandas as pd

src, out = Path(sys.argv[1]), Path(sys.argv[2])
d = pd.read_csv(src, dtype=str, keep_default_na=False)
d["candidacy"] = range(1, len(d) + 1)
contest = ["election_dt", "county_name", "contest_name"]
ballot = d[["candidacy", *contest, "name_on_ballot"]].sample(frac=1, random_state=1).reset_index(drop=True)
ballot.insert(0, "ballot_id", [f"B{i:05d}" for i in range(1, len(ballot) + 1)])
reg = d[["candidacy", *contest, "first_name", "middle_name", "last_name", "name_suffix_lbl", "nick_name"]]
reg = reg.sample(frac=1, random_state=2).reset_index(drop=True)
reg.insert(0, "registration_id", [f"R{i:05d}" for i in range(1, len(reg) + 1)])
ballot.to_csv(out / "ballot.csv", index=False)
reg.to_csv(out / "registration.csv", index=False)
print(len(ballot), len(reg))

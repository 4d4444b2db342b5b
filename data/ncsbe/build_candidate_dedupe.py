"""Build the NC candidate dedupe task: every candidacy of 2020-2025 as one record, the same person across years.

Source: ncsbe_candidacies_2020_2025.csv (public records of the North Carolina State Board of Elections). Each
candidacy keeps its ballot name, legal name, county, city, contest, election and parties; ids are shuffled so that
they reveal nothing. Truth: `person_key`, a SILVER truth built upstream (same legal first and last name plus the
same e-mail, phone or street address; the contact details themselves were removed): it can miss a person who
changed every contact detail and can merge same-named relatives at one address.

    python data/ncsbe/build_candidate_dedupe.py ../shared/datasets/ncsbe/ncsbe_candidacies_2020_2025.csv data/ncsbe
"""

import sys
from pathlib import Path

import pandas as pd

src, out = Path(sys.argv[1]), Path(sys.argv[2])
d = pd.read_csv(src, dtype=str, keep_default_na=False)
keep = [
    "election_dt", "county_name", "contest_name", "name_on_ballot", "first_name", "middle_name", "last_name",
    "name_suffix_lbl", "nick_name", "city", "zip_code", "party_candidate", "person_key",
]  # fmt: skip
d = d[keep].sample(frac=1, random_state=3).reset_index(drop=True)
d.insert(0, "candidacy_id", [f"C{i:05d}" for i in range(1, len(d) + 1)])
d.to_csv(out / "candidacies.csv", index=False)
print(len(d), d["person_key"].nunique())

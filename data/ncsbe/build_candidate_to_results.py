"""Build the two sides of the candidate_to_results task (a CRM's candidate records <-> official results) from the
NCSBE candidate filings.

Source: ncsbe_candidacies_2020_2025.csv (public records of the North Carolina State Board of Elections).
Each candidacy becomes one CRM record (legal name, party, contest, election) and one results row (the name as
printed on the ballot, contest, election, vote_for, term). The shared `candidacy` number is the ground truth.

Election types come from NC's election calendar below. A second primary (runoff) is filed in the CRM under the
date of the primary it continues, as a campaign CRM tracks one race, while the results carry the runoff's own
date: the preset must search runoffs on dates on or after the base election. Record ids are shuffled per side.
The filings carry no winner flag, so none is invented here; `vote_for` and `term` stand in as carried columns.

    python data/ncsbe/build_candidate_to_results.py ../shared/datasets/ncsbe/ncsbe_candidacies_2020_2025.csv data/ncsbe
"""

import sys
from pathlib import Path

import pandas as pd

# NC State Board of Elections calendar 2020-2025: date -> (type, base election of a runoff).
CALENDAR = {
    "03/03/2020": ("primary", None),
    "06/23/2020": ("runoff", "03/03/2020"),
    "11/03/2020": ("general", None),
    "10/05/2021": ("primary", None),
    "11/02/2021": ("general", None),
    "05/17/2022": ("primary", None),
    "07/26/2022": ("runoff", "05/17/2022"),
    "11/08/2022": ("general", None),
    "03/07/2023": ("primary", None),
    "09/12/2023": ("primary", None),
    "10/10/2023": ("primary", None),
    "11/07/2023": ("general", None),
    "03/05/2024": ("primary", None),
    "05/14/2024": ("runoff", "03/05/2024"),
    "11/05/2024": ("general", None),
    "09/09/2025": ("primary", None),
    "10/07/2025": ("primary", None),
    "11/04/2025": ("general", None),
}

src, out = Path(sys.argv[1]), Path(sys.argv[2])
d = pd.read_csv(src, dtype=str, keep_default_na=False)
d["candidacy"] = range(1, len(d) + 1)
unknown = sorted(set(d.election_dt) - set(CALENDAR))
if unknown:
    sys.exit(f"election dates missing from CALENDAR: {unknown}")
d["election_type"] = d.election_dt.map(lambda x: CALENDAR[x][0])
d["state"] = "NC"
d["party"] = d.party_candidate

crm = d[
    [
        "candidacy",
        "election_dt",
        "election_type",
        "state",
        "county_name",
        "contest_name",
        "first_name",
        "middle_name",
        "last_name",
        "name_suffix_lbl",
        "nick_name",
        "party",
    ]
].copy()
crm["election_dt"] = d.election_dt.map(lambda x: CALENDAR[x][1] or x)  # runoffs under their base election
crm = crm.rename(columns={"election_dt": "election_date"}).sample(frac=1, random_state=3).reset_index(drop=True)
crm.insert(0, "crm_id", [f"C{i:05d}" for i in range(1, len(crm) + 1)])

results = d[
    [
        "candidacy",
        "election_dt",
        "election_type",
        "state",
        "county_name",
        "contest_name",
        "name_on_ballot",
        "party",
        "vote_for",
        "term",
    ]
].rename(columns={"election_dt": "election_date"})
results = results.sample(frac=1, random_state=4).reset_index(drop=True)
results.insert(0, "result_id", [f"X{i:05d}" for i in range(1, len(results) + 1)])

crm.to_csv(out / "crm.csv", index=False)
results.to_csv(out / "results.csv", index=False)
print(len(crm), len(results), crm.election_type.value_counts().to_dict())

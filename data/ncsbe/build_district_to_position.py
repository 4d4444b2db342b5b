"""Build the two sides of the district_to_position task (voter-file districts <-> office positions).

Positions are REAL: every distinct contest of the NCSBE candidate filings 2020-2025 (county-level offices per
county, state and federal seats once), the latest name kept when a school system renamed its board.
Districts are SIMULATED from them, written the way a voter file writes district assignments (a type column plus a
short descriptor: NC HOUSE / "063", COUNTY COMMISSIONER / "COMMISSIONER DISTRICT 1", MUNICIPAL WARD / "WARD 3", with
the municipality or school system as jurisdiction), for the district-based offices: NC House and Senate, US House, county commissions, boards of
education, city and town councils. Every such set gets one extra district with no position (the "none" answer).
Judicial seats, at-large seats and statewide offices have no district row. Truth: `position_key`.

    python data/ncsbe/build_district_to_position.py ../shared/datasets/ncsbe/ncsbe_candidacies_2020_2025.csv data/ncsbe
"""

import re
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from splink_er.normalize.offices import parse_office  # noqa: E402

src, out = Path(sys.argv[1]), Path(sys.argv[2])
d = pd.read_csv(src, dtype=str, keep_default_na=False)
d["when"] = pd.to_datetime(d.election_dt, format="%m/%d/%Y")
c = d.sort_values("when").drop_duplicates(["county_name", "contest_name"], keep="last")[
    ["county_name", "contest_name", "when"]
]
c = pd.concat([c.reset_index(drop=True), pd.DataFrame([parse_office(x) for x in c.contest_name])], axis=1)
state_wide = c.office_level.isin(["state", "federal"])
c.loc[state_wide, "county_name"] = ""  # a state or federal seat is one position, whatever county listed it
munis = c.contest_name.str.extract(
    r"^(?:CITY|TOWN|VILLAGE) OF ([A-Z .'-]+?) (?:CITY |TOWN |VILLAGE )?(?:COUNCIL|COMMISSIONER|ALDERM|BOARD|MAYOR)"
)[0]
# The school system without "SCHOOLS" / "PUBLIC SCHOOLS", so a board renamed between years stays one seat.
schools = c.contest_name.str.extract(r"^(.+?) (?:BOARD|BD) OF EDUCATION")[0].str.replace(
    r"\s+(?:PUBLIC\s+)?SCHOOLS?$", "", regex=True
)
# The jurisdiction a voter file names beside the district: the municipality, or the school system.
c["jurisdiction"] = munis.fillna(schools.where(c.office_role == "school_board")).fillna("")
key = ["county_name", "office_level", "office_role", "office_district", "jurisdiction"]
# One position per seat: a board renamed between years ("... PUBLIC SCHOOLS BOARD ..." -> "... BOARD ...") keeps
# its latest name.
c = c.sort_values("when").drop_duplicates(["county_name", "contest_name"], keep="last")
districted = c.office_district.notna() & c.office_role.isin(
    ["lower_chamber", "upper_chamber", "commissioner", "school_board", "council"]
)
seat = c[districted].sort_values("when").drop_duplicates(key, keep="last")
positions = pd.concat([seat, c[~districted]]).drop_duplicates(["county_name", "contest_name"])
positions = positions.sample(frac=1, random_state=5).reset_index(drop=True)
positions.insert(0, "position_id", [f"O{i:05d}" for i in range(1, len(positions) + 1)])
positions["position_key"] = positions.position_id

TYPES = {
    ("state", "lower_chamber"): "NC HOUSE",
    ("state", "upper_chamber"): "NC SENATE",
    ("federal", "lower_chamber"): "CONGRESSIONAL",
    ("county", "commissioner"): "COUNTY COMMISSIONER",
    ("school_district", "school_board"): "SCHOOL BOARD",
    ("municipal", "council"): "MUNICIPAL WARD",
    ("municipal", "commissioner"): "MUNICIPAL WARD",
}  # a town's wards elect a council or a board


def descriptor(kind: str, number: str, contest: str) -> str:
    if kind in ("NC HOUSE", "NC SENATE", "CONGRESSIONAL"):
        return number.zfill(3) if kind == "NC HOUSE" else number.zfill(2)
    if kind == "COUNTY COMMISSIONER":
        return f"COMMISSIONER DISTRICT {number}"
    if kind == "SCHOOL BOARD":
        return f"SCHOOL DISTRICT {number}"
    return f"{'WARD' if re.search(r'WARD', contest) else 'DISTRICT'} {number}"


rows = []
have = positions[
    positions.office_district.notna()
    & positions.apply(lambda r: (r.office_level, r.office_role) in TYPES, axis=1)
    & positions.office_district.str.fullmatch(r"\d+")
]
for _, p in have.iterrows():
    kind = TYPES[(p.office_level, p.office_role)]
    rows.append(
        {
            "county_name": p.county_name,
            "district_type": kind,
            "jurisdiction": p.jurisdiction,
            "district_desc": descriptor(kind, p.office_district, p.contest_name),
            "position_key": p.position_key,
        }
    )
# One more district per set than there are positions: its answer is "none".
for (county, level, role, jur), g in have.groupby(["county_name", "office_level", "office_role", "jurisdiction"]):
    kind = TYPES[(level, role)]
    n = str(max(int(x) for x in g.office_district) + 1)
    rows.append(
        {
            "county_name": county,
            "district_type": kind,
            "jurisdiction": jur,
            "district_desc": descriptor(kind, n, g.contest_name.iloc[0]),
            "position_key": None,
        }
    )
districts = pd.DataFrame(rows).sample(frac=1, random_state=6).reset_index(drop=True)
districts.insert(0, "district_id", [f"D{i:05d}" for i in range(1, len(districts) + 1)])
districts["position_key"] = districts.position_key.fillna(districts.district_id.radd("none-"))
positions[["position_id", "position_key", "county_name", "contest_name"]].to_csv(out / "positions.csv", index=False)
districts.to_csv(out / "districts.csv", index=False)
print(
    len(positions),
    "positions;",
    len(districts),
    "districts,",
    districts.position_key.str.startswith("none-").sum(),
    "with no position",
)

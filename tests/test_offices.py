"""Office level, role and district from contest names."""

from pathlib import Path

import pandas as pd
import pytest

from splink_er.normalize.offices import parse_office


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("State House District 15", ("state", "lower_chamber", "15")),
        ("California State Assembly District 15", ("state", "lower_chamber", "15")),
        ("NC HOUSE OF REPRESENTATIVES DISTRICT 015", ("state", "lower_chamber", "15")),
        ("NC STATE SENATE DISTRICT 18", ("state", "upper_chamber", "18")),
        ("US HOUSE OF REPRESENTATIVES DISTRICT 04", ("federal", "lower_chamber", "4")),
        ("4th Congressional District", ("federal", None, "4")),
        ("US SENATE", ("federal", "upper_chamber", None)),
        ("PRESIDENT AND VICE PRESIDENT OF THE UNITED STATES", ("federal", "president", None)),
        ("NC SUPERIOR COURT JUDGE DISTRICT 10A SEAT 02", ("judicial", "judge", "10A")),
        ("WAKE COUNTY BOARD OF EDUCATION DISTRICT 05", ("school_district", "school_board", "5")),
        ("SOIL AND WATER CONSERVATION DISTRICT SUPERVISOR", ("special_district", "supervisor", None)),
        ("MOORE COUNTY BOARD OF COMMISSIONERS DISTRICT II", ("county", "commissioner", "2")),
        ("CITY OF RALEIGH MAYOR", ("municipal", "mayor", None)),
        ("CITY COUNCIL WARD 3", ("municipal", "council", "3")),
        ("TOWN OF AYDEN BOARD OF COMMISSIONERS WARD 03", ("municipal", "commissioner", "3")),
        ("SHERIFF", ("county", "sheriff", None)),
        ("Dog catcher", (None, None, None)),
    ],
)
def test_offices(raw, expected):
    got = parse_office(raw)
    assert (got["office_level"], got["office_role"], got["office_district"]) == expected


def test_same_chamber_and_district_across_wordings():
    a, b = parse_office("State House District 15"), parse_office("California State Assembly District 15")
    assert a == b


def test_every_nc_contest_gets_a_level():
    contests = pd.read_csv(Path(__file__).resolve().parents[1] / "data/ncsbe/ballot.csv", dtype=str).contest_name
    parsed = pd.DataFrame([parse_office(c) for c in contests.drop_duplicates()])
    assert parsed["office_level"].notna().all()
    assert parsed["office_role"].notna().mean() > 0.99

"""Names from real election files that the person-name parser used to misread (issue 19): nickname-only first
names, surnames alone, first names nameparser takes for titles, letters and quotes a source lost to `_` and `?`."""

import jellyfish
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from splink_er.comparisons import build
from splink_er.normalize.names import FIELDS, parse_name


def parsed(raw, fmt="auto"):
    return {k: v for k, v in parse_name(raw, fmt).items() if v}


def level_of(left: str, right: str, args: dict | None = None) -> str:
    """The PersonName level two raw names fall in, both parsed as the person_name normalizer parses them."""
    import duckdb

    comparison = build("PersonName", args or {}).get_comparison("duckdb").as_dict()
    row = {f"{k}_l": v for k, v in parse_name(left).items()} | {f"{k}_r": v for k, v in parse_name(right).items()}
    con = duckdb.connect()
    con.execute(f"CREATE TABLE p AS SELECT {', '.join(f'CAST(? AS VARCHAR) AS {k}' for k in row)}", list(row.values()))
    for lv in comparison["comparison_levels"]:
        if lv["sql_condition"] == "ELSE" or con.execute(f"SELECT ({lv['sql_condition']}) FROM p").fetchone()[0]:
            return lv["label_for_charts"]


@pytest.mark.parametrize(
    "raw,last,nickname",
    [
        ('""Jack"" Radosta', "RADOSTA", "JACK"),
        ('Jacobs, "Jerry"', "JACOBS", "JERRY"),
        ('Gibbs, "Tom," Jr.', "GIBBS", "TOM"),
    ],
)
def test_a_nickname_given_as_the_only_first_name_is_the_first_name(raw, last, nickname):
    got = parsed(raw)
    assert (got["last_name"], got["nickname"], got["first_name"]) == (last, nickname, nickname)
    # The comparison then sees the person: the same nickname written as a first name by another source.
    assert level_of(raw, f"{nickname.title()} {last.title()}").startswith("exact full name")


@pytest.mark.parametrize("raw", ["Murkowski", "Murkowski, Jr.", "Jacobs,"])
def test_a_surname_alone_is_a_last_name(raw):
    got = parsed(raw)
    assert "first_name" not in got and got["last_name"] == raw.split(",")[0].upper()


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("Baron P. Hill", ("BARON", "P.", "HILL", None)),
        ("Hill, Baron P.", ("BARON", "P.", "HILL", None)),
        ("Field Reichardt", ("FIELD", None, "REICHARDT", None)),
        ("Reichardt, Field", ("FIELD", None, "REICHARDT", None)),
        ("Princess Foster", ("PRINCESS", None, "FOSTER", None)),
        # Titles stay titles where the rest still names a person, and honorifics never become first names.
        ("Dr. Jane Smith", ("JANE", None, "SMITH", "Dr.")),
        ("Senator John Smith", ("JOHN", None, "SMITH", "Senator")),
        ("Mr Smith", (None, None, "SMITH", "Mr")),
        ("Hon. Baron Hill", ("BARON", None, "HILL", "Hon.")),
    ],
)
def test_first_names_nameparser_takes_for_titles(raw, expected):
    got = parse_name(raw)
    assert (got["first_name"], got["middle_name"], got["last_name"], got["name_title"]) == expected


def test_quotes_a_source_wrote_as_question_marks_hold_a_nickname():
    got = parsed("Howard P. ??Buck?? McKeon")
    assert (got["first_name"], got["middle_name"], got["last_name"], got["nickname"]) == (
        "HOWARD",
        "P.",
        "MCKEON",
        "BUCK",
    )


@pytest.mark.parametrize("lost,spelled", [("Maria Vel___quez", "Maria Velázquez"), ("Jose Garc_a", "Jose García")])
def test_letters_lost_to_underscores_keep_the_word_whole_and_close(lost, spelled):
    got, want = parse_name(lost), parse_name(spelled)
    assert got["first_name"] == want["first_name"] and "_" not in got["last_name"]
    assert len(got["last_name"].split()) == 1  # one word, not split at the lost letters
    assert jellyfish.jaro_winkler_similarity(got["last_name"], want["last_name"]) >= 0.88
    assert level_of(lost, spelled) not in ("names differ", "name missing")


# Pieces of names and the marks that trip the parser, in any order.
NAMEISH = st.lists(
    st.sampled_from(list("abcXYZ ,.'\"?_()-/&éÁ“”") + ["Jr", "III", "Dr.", "Baron", "van", "(R)", "??", '""']),
    max_size=20,
).map("".join)


@settings(max_examples=400, deadline=None)
@given(raw=st.one_of(NAMEISH, st.text(max_size=60)))
def test_parsing_never_raises_and_is_deterministic(raw):
    first = parse_name(raw)
    assert set(first) == set(FIELDS) and parse_name(raw) == first
    assert all(v is None or (isinstance(v, str) and v) for v in first.values())
    for k in ("first_name", "middle_name", "last_name"):
        assert first[k] is None or not {"_", "?", '"'} & set(first[k])

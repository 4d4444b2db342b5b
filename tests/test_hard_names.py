"""Names from real election files that the person-name parser used to misread (issue 19): nickname-only first
names, surnames alone, first names nameparser takes for titles, letters and quotes a source lost to `_` and `?`."""

import jellyfish
import pytest
from hypothesis import example, given, settings
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
@example(raw='("")')  # a bracketed nickname of quotes only: once kept '""' as the first name
def test_parsing_never_raises_and_is_deterministic(raw):
    first = parse_name(raw)
    assert set(first) == set(FIELDS) and parse_name(raw) == first
    assert all(v is None or (isinstance(v, str) and v) for v in first.values())
    for k in ("first_name", "middle_name", "last_name"):
        assert first[k] is None or not {"_", "?", '"'} & set(first[k])


SWAPPED = ("Nimrod Y. U. Allen III", "Nimrod, Allen Y.U., III")


def test_first_and_last_swapped_between_sources_has_its_own_level_when_enabled():
    left, right = (parse_name(n) for n in SWAPPED)
    assert (left["first_name"], left["last_name"]) == (right["last_name"], right["first_name"])
    assert level_of(*SWAPPED, {"first_last_swap": True}).startswith("first and last swapped")
    assert not level_of(*SWAPPED).startswith("first and last swapped")
    # Names that agree as filed stay at their own, stronger level.
    assert level_of("Allen Nimrod", "Allen Nimrod", {"first_last_swap": True}) == "exact full name"


def levels(args: dict) -> list[dict]:
    return build("PersonName", args).get_comparison("duckdb").as_dict()["comparison_levels"]


def test_presets_keep_their_person_name_levels_unless_the_swap_level_is_enabled():
    import yaml

    from splink_er.settings_reference import README

    presets = sorted((README.parent / "settings").glob("*.yaml"))
    blocks = [
        c.get("args", {})
        for p in presets
        for c in yaml.safe_load(p.read_text())["comparisons"]
        if c["kind"] == "PersonName"
    ]
    assert blocks  # candidate_to_results and contacts use it
    for args in blocks:
        assert "first_last_swap" not in args
        default, off, on = (
            levels(args),
            levels(args | {"first_last_swap": False}),
            levels(args | {"first_last_swap": True}),
        )
        assert default == off
        added = [lv for lv in on if lv not in default]
        assert [lv for lv in on if lv not in added] == default and len(added) == 1
        assert added[0]["label_for_charts"].startswith("first and last swapped")


def test_the_swap_switch_takes_only_true_or_false(demo_dict):
    import splink_er

    demo_dict["comparisons"][0] = {"kind": "PersonName", "args": {"first_last_swap": "yes"}}
    with pytest.raises(splink_er.SettingsError, match=r"\['first_last_swap'\] take true or false"):
        splink_er.load_settings(demo_dict)

"""What a contest or row label of an election results file is: a candidate race, a ballot measure, or a
turnout/metadata row, so rows that are not candidates can be left out before matching.

Results files mix candidate rows with rows that count something else: "Registered Voters", "Ballots Cast",
"Over Votes", "Blank", a measure's "For" / "Against", and contests that are questions ("School Bond Referendum",
"Constitutional Amendment 1", "Proposition 22"). Rules are whole words, case-insensitive; anything they do not
name is a candidate race (the common case), and an empty label is None.

Example:
    >>> [contest_kind(v) for v in ["NC STATE SENATE DISTRICT 15", "Registered Voters", "AGAINST", "Bond Referendum"]]
    ['candidate_race', 'turnout_metadata', 'ballot_measure', 'ballot_measure']
"""

from __future__ import annotations

import re

KINDS = ("candidate_race", "ballot_measure", "turnout_metadata")

# Counts of ballots and voters, and choices that are no candidate (a presidential primary's "No Preference",
# aggregate write-ins): filtered like turnout rows, as no person stands behind them.
TURNOUT = re.compile(
    r"^(?:total\s+)?(?:registered\s+voters?|ballots?\s+cast|ballots|votes\s+cast|times\s+cast|turnout|"
    r"over\s*-?\s*votes?|under\s*-?\s*votes?|blank(?:\s+(?:votes?|ballots?))?|total(?:\s+votes?)?|"
    r"no\s+preference|uncommitted|scattering|(?:total\s+)?write\s*-?\s*ins?(?:\s*\(?(?:miscellaneous|scattered|"
    r"totals?)\)?)?|(?:un)?resolved\s+write\s*-?\s*ins?|rejected\s+ballots?|spoiled\s+ballots?)"
    r"(?:\s*-\s*(?:total|blank))?$"  # results-site style: "Registered Voters - Total", "Ballots Cast - Blank"
)
# A measure's choices as whole labels ("For", "AGAINST", "Yes", "No"), alone or after a dash ("Bonds - Yes").
CHOICES = re.compile(r"^(?:[^-]+\s-\s*)?(?:for|against|yes|no)$")
# Words that name a question on the ballot, never an office. "Tax" alone is not one (Tax Collector is an office);
# NC's local sales-tax and alcohol referendums are named by their subject. Bond(s) and Levy are also surnames
# (Regina Bond, Catherine Bonds Moore, Joel Levy on NC ballots), so they count only next to a measure word.
MEASURE = re.compile(
    r"\b(?:amendments?|referendums?|referenda|propositions?|prop\s+\d+\w*|questions?|measures?|initiatives?|"
    r"issue\s+\d+|ballot\s+issue|charter\s+(?:change|amendment)|sales\s+and\s+use\s+tax|malt\s+beverages?|"
    r"unfortified\s+wine|fortified\s+wine|mixed\s+beverages?|abc\s+stores?|"
    r"(?:school|schools|transportation|parks?|housing|library|water|sewer|street|streets|road|roads|public|"
    r"improvement|obligation|county|city|town|college|community|facilities|recreation)\s+bonds?|"
    r"bonds?\s+(?:order|issue|referendum|question|measure|proposal|act)|"
    r"(?:tax|school|operating|special|property|millage|renewal|additional|replacement|permanent)\s+levy|"
    r"levy\s+(?:renewal|increase))\b"
)


def contest_kind(value) -> str | None:
    """'Registered Voters' -> 'turnout_metadata'; 'For', 'Amendment 1' -> 'ballot_measure'; an office or a
    candidate -> 'candidate_race'; empty -> None."""
    if value is None:
        return None
    text = re.sub(r"[\s_]+", " ", str(value)).strip().lower()
    text = re.sub(r"^[^\w(]+|[^\w)]+$", "", text)  # outer punctuation: "Yes.", "*Over Votes*", "- Blank -"
    if not text:
        return None
    if TURNOUT.match(text):
        return "turnout_metadata"
    if CHOICES.match(text) or MEASURE.search(text):
        return "ballot_measure"
    return "candidate_race"

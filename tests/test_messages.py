"""How progress and Splink's own warnings reach a user: plain lines in logs, one translated line per warning."""

import io
import logging
import re

import pytest

from splink_er.progress import LineReporter, Reporter
from splink_er.splink_messages import SplinkMessages, route_splink_messages


class Collect(Reporter):
    quiet = False

    def __init__(self):
        self.warnings = []

    def warn(self, message):
        self.warnings.append(message)


def test_line_reporter_writes_stages_progress_and_tables_as_plain_lines():
    out = io.StringIO()
    r = LineReporter(out, every_seconds=3600)
    with r.status("[bold]bootstrap[/]"):
        pass
    with r.progress("judging (band)", 400) as advance:
        for _ in range(40):
            advance(10)
    r.table("decided", ["decided_by", "pairs", "why"], [["judge", 1500, "asked"], ["model_accept", 7, "sure"]])
    lines = out.getvalue().splitlines()
    assert all(re.match(r"\d\d:\d\d:\d\d ", line) for line in lines)
    text = "\n".join(line[9:] for line in lines)
    assert "bootstrap ...\nbootstrap: done in" in text and "[bold]" not in text
    # A quarter at a time, not 40 lines: 0, 100, 200, 300, 400, then the end.
    assert re.findall(r"judging \(band\): ([\d,]+)/400", text) == ["0", "100", "200", "300", "400"]
    assert "judging (band): 400 done in" in text
    assert "  judge         1,500  asked" in text and "  model_accept  7      sure" in text


@pytest.mark.parametrize(
    ("possible", "said"), [(10**5, False), (10**8, True)], ids=["fewer pairs than sampled", "more"]
)
def test_max_pairs_advice_names_this_librarys_setting_and_only_when_it_applies(possible, said):
    h = SplinkMessages(Collect(), u_max_pairs=10**6)
    h.possible_pairs = possible
    message = h.translate("You are using the default value for `max_pairs`, which may be too small ...")
    assert (message is not None) == said
    if said:
        assert "bootstrap.u_max_pairs=1,000,000" in message and "100,000,000 possible" in message


def test_splink_warnings_are_translated_said_once_and_unknown_ones_pass_through():
    reporter = Collect()
    route_splink_messages(reporter, u_max_pairs=10**6)
    splink_log = logging.getLogger("splink.internals.expectation_maximisation")
    for _ in range(3):  # once per EM session in Splink; once here
        splink_log.warning(
            "WARNING:\nLevel Exact match on comparison email not observed in dataset, unable to train m value\n"
        )
    logging.getLogger("splink.internals.linker").warning(
        "\n -- WARNING --\nYou have called predict(), but there are some parameter estimates ...\n"
        "Comparison: 'email':\n    m values not fully trained"
    )
    logging.getLogger("splink.internals.linker").warning(
        "\n -- WARNING --\nYou have called predict(), but ...\nComparison: 'dob':\n    u values not fully trained"
    )
    logging.getLogger("splink.x").warning("Something new\n  happened")
    logging.getLogger("splink.x").info("not a warning")
    assert reporter.warnings == [
        "comparison 'email', level 'Exact match': no pair in the EM training blocks reached it, so its m is "
        "Splink's default until labels train it (or add bootstrap.em_blocking_rules that reach it)",
        "comparison(s) dob: some levels score with Splink's default m or u (never estimated)",
        "Splink: Something new happened",
    ]
    # A new job replaces the handler: Splink's logger carries one of ours, not one per job.
    route_splink_messages(Collect())
    assert sum(isinstance(h, SplinkMessages) for h in logging.getLogger("splink").handlers) == 1


def test_a_resolves_narrowed_blocking_rules_are_not_reported_as_invalid_but_other_checks_are():
    # Splink 5's settings check, as it logs a resolve's rules (each section one record).
    header = "SETTINGS VALIDATION: Errors were identified in your settings dictionary. \n"
    rules = (
        "======================================\nInvalid Columns(s) in Blocking Rule(s)\n"
        "======================================\n\n    SQL: `(l.dob = r.dob) AND (l.unique_id IN (SELECT unique_id "
        "FROM res_new_keys))`\n    - Invalid table names provided (only `l.` and `r.` are valid): `unique_id`"
    )
    comparisons = "======================================\nInvalid Columns(s) in Comparison(s)\n... `l.dob2`"
    footer = "You may want to verify your settings dictionary has valid inputs in all fields before continuing."
    h = SplinkMessages(Collect())
    assert all(h.translate(t) for t in (header, rules, comparisons, footer))  # a run: all of it said
    h.rules_narrowed = True
    assert [h.translate(t) for t in (header, rules, footer)] == [None, None, None]
    assert "Invalid Columns(s) in Comparison(s)" in h.translate(comparisons)

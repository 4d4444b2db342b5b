"""Splink's own warnings, said in this library's terms.

Splink's advice is written for Splink's API ("the default value for `max_pairs`", "you have called predict()"),
repeats once per EM session and predict, and prints as raw blocks on stderr. A job routes Splink's logger
through `SplinkMessages`: the messages it knows become one line naming the splink_er setting to change (or
nothing, when the advice does not apply to this job), each said once per job through the job's reporter, so they
reach the terminal and the `splink_er` logger like every other message. Messages it does not know pass through
with "Splink:" in front.
"""

from __future__ import annotations

import logging
import re

SPLINK_LOGGER = "splink"


class SplinkMessages(logging.Handler):
    """Translates Splink's warnings for one job and says each once through `reporter.warn`."""

    def __init__(self, reporter, u_max_pairs: int | None = None) -> None:
        super().__init__(logging.WARNING)
        self.reporter = reporter
        self.u_max_pairs = u_max_pairs
        self.possible_pairs: int | None = None  # known once the inputs are loaded
        self.said: set[str] = set()
        self.unobserved: set[str] = set()  # comparisons with a level EM or u sampling never saw
        # A resolve narrows each blocking rule to pairs with a new record by a subquery, which Splink's settings
        # check reads as columns of no table; the rules themselves were checked when the model was trained.
        self.rules_narrowed = False

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = self.translate(record.getMessage())
        except Exception:  # a handler must never break the run it reports on
            self.handleError(record)
            return
        if message and message not in self.said:
            self.said.add(message)
            self.reporter.warn(message)

    def translate(self, text: str) -> str | None:
        """This library's words for a Splink message, or None when it does not apply here."""
        if "default value for `max_pairs`" in text:
            if self.possible_pairs is not None and self.u_max_pairs and self.u_max_pairs >= self.possible_pairs:
                return None  # as many random pairs as there are pairs: nothing to gain
            return (
                f"u was estimated from bootstrap.u_max_pairs={self.u_max_pairs or 0:,} random pairs"
                + (f" of {self.possible_pairs:,} possible" if self.possible_pairs else "")
                + "; raise it (e.g. to 100000000) for steadier u on inputs this size, at more run time"
            )
        unobserved = re.search(r"Level (.+) on comparison (.+) not observed in dataset, unable to train (m|u)", text)
        if unobserved:
            level, comparison, which = unobserved.groups()
            self.unobserved.add(comparison)
            if which == "m":
                return (
                    f"comparison '{comparison}', level '{level}': no pair in the EM training blocks reached it, "
                    "so its m is Splink's default until labels train it (or add bootstrap.em_blocking_rules "
                    "that reach it)"
                )
            return (
                f"comparison '{comparison}', level '{level}': none of the random pairs for u reached it, so its u "
                "is Splink's default (raise bootstrap.u_max_pairs)"
            )
        if self.rules_narrowed and (
            text.startswith(("SETTINGS VALIDATION: Errors were identified", "You may want to verify your settings"))
            or "Invalid Columns(s) in Blocking Rule(s)" in text
        ):
            return None  # (another section of the check, on comparisons, still passes through)
        if "No null level found for comparison" in text:
            # model.json turns trained comparisons' null levels into ordinary ones on purpose (model_file.py),
            # and every linker built from it (report, explain) says this; the advice does not apply there.
            return None
        if "You have called predict()" in text:
            named = set(re.findall(r"Comparison: '([^']+)'", text))
            if named <= self.unobserved:
                return None  # the levels behind it were named when training missed them
            return (
                f"comparison(s) {', '.join(sorted(named - self.unobserved))}: some levels score with Splink's "
                "default m or u (never estimated)"
            )
        plain = re.sub(r"-*\s*WARNING\s*-*:?", "", text).strip()
        return f"Splink: {' '.join(plain.split())}" if plain else None


def route_splink_messages(reporter, u_max_pairs: int | None = None) -> SplinkMessages:
    """Send Splink's warnings (and errors) through a new `SplinkMessages` for this job. Splink's logger is
    process-wide: the last job set up decides (Linkers are built with log_level=None so they leave it alone)."""
    logger = logging.getLogger(SPLINK_LOGGER)
    for h in list(logger.handlers):
        if isinstance(h, SplinkMessages) or getattr(h, "_splink_default_handler", False):
            logger.removeHandler(h)
    handler = SplinkMessages(reporter, u_max_pairs)
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    logger.propagate = False  # said once, through the reporter (which logs to the `splink_er` logger)
    return handler

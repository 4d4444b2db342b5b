"""Every error splink_er raises on purpose, under one base class, each with the exit code the CLI gives it.

Messages say what is wrong and what to change. Catch `SplinkERError` for all of them; the CLI maps each class
to its exit code through `exit_code`, so a new error class cannot be given a code in two places.
"""

from __future__ import annotations


class SplinkERError(Exception):
    """Base class of splink_er's errors."""

    exit_code = 1
    title = "error"


class SettingsError(SplinkERError, ValueError):
    """The settings (file, `--set` override or argument) are invalid; the message names the key and the fix."""

    exit_code = 2
    title = "settings error"


class InputError(SplinkERError, ValueError):
    """Input data cannot be used as configured; the message says which source, which column and what to change."""

    exit_code = 3
    title = "input error"


class PreviousRunMissing(SplinkERError, FileNotFoundError):
    """A command needs a finished run's outputs (retrain, explain, review) and they are not there."""

    exit_code = 4
    title = "previous run missing"


class JudgeError(SplinkERError):
    """The judge cannot work: no API key, key rejected, model unknown, replay log or answer missing."""

    exit_code = 5
    title = "judge error"


class JudgeConfigError(JudgeError, ValueError):
    """The judge cannot be built from these settings and environment; the message says what to set."""


class JudgeFatalError(JudgeError, RuntimeError):
    """A judge failure that retrying cannot fix (bad key, unknown model, replay answer missing): the run stops.
    Answers received before it are already in the label store."""


class DependencyMissing(SplinkERError, ImportError):
    """An optional dependency the settings need is not installed (e.g. pyspark for engine.kind spark)."""

    exit_code = 6
    title = "missing dependency"


class Busy(SplinkERError):
    """Another splink-er process is writing the same label store or output directory; the message says which."""

    exit_code = 7
    title = "busy"


__all__ = [
    "Busy",
    "DependencyMissing",
    "InputError",
    "JudgeConfigError",
    "JudgeError",
    "JudgeFatalError",
    "PreviousRunMissing",
    "SettingsError",
    "SplinkERError",
]

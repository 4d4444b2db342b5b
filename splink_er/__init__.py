"""splink_er: Splink scores every blocked pair; a judge (an LLM, or the simulated truth judge) decides only the
uncertain band and a small stratified sample; every answer becomes a label that retrains the model.

Quick start:
    >>> import splink_er
    >>> result = splink_er.run(splink_er.demo_settings_path(), quiet=True,
    ...                        overrides=["output_dir=/tmp/se_init", "labels.path=/tmp/se_init/labels.jsonl"])
    >>> sorted(result.decisions.columns)[:3]
    ['conflict', 'decided_by', 'final_match']

The public surface on one screen:
    entry points   run, retrain, prepare -> Job (steps: bootstrap, score, sample, judge_pairs, train, route, ...);
                   resolve -> ResolveResult (new records: MERGE / REVIEW / INSERT against the entity store)
    result         RunResult (metrics, decisions, clusters, matches; explain, explain_pairs, review, diff);
                   open_run -> the RunResult of a finished run on disk
    settings       Settings, load_settings, demo_settings_path
    judges         Judge, TruthJudge, PairContext, JudgeDecision
    labels, logs   LabelStore, make_label, import_labels (labels a team already has), DecisionLog
    errors         SplinkERError and its subclasses (each with the CLI's exit code)

Names load on first use (PEP 562), so `import splink_er` does not import Splink, altair or the LLM SDKs.
"""

from importlib import import_module
from importlib.resources import files
from pathlib import Path

from .errors import (
    Busy,
    DependencyMissing,
    InputError,
    JudgeConfigError,
    JudgeError,
    JudgeFatalError,
    PreviousRunMissing,
    SettingsError,
    SplinkERError,
)

# name -> module that defines it; imported when the name is first used.
_LAZY = {
    "Job": "job",
    "prepare": "job",
    "run": "job",
    "retrain": "job",
    "open_run": "job",
    "resolve": "resolving",
    "ResolveResult": "resolving",
    "RunResult": "result",
    "Settings": "settings",
    "load_settings": "settings",
    "Judge": "judges",
    "TruthJudge": "judges",
    "PairContext": "pairs",
    "JudgeDecision": "pairs",
    "LabelStore": "labels",
    "make_label": "labels",
    "import_labels": "label_import",
    "DecisionLog": "decision_log",
}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value  # later uses skip this function
        return value
    raise AttributeError(f"module 'splink_er' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


def demo_settings_path() -> Path:
    """Settings of the bundled demo (Splink's fake_1000 persons, deduplicated, with the simulated truth judge)."""
    return Path(str(files("splink_er") / "demo" / "fake_1000.yaml"))


__all__ = [
    "Busy",
    "DecisionLog",
    "DependencyMissing",
    "InputError",
    "Job",
    "Judge",
    "JudgeConfigError",
    "JudgeDecision",
    "JudgeError",
    "JudgeFatalError",
    "LabelStore",
    "PairContext",
    "PreviousRunMissing",
    "RunResult",
    "Settings",
    "SettingsError",
    "SplinkERError",
    "TruthJudge",
    "demo_settings_path",
    "import_labels",
    "load_settings",
    "make_label",
    "open_run",
    "prepare",
    "retrain",
    "run",
]

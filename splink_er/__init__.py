"""splink_er: Splink scores every blocked pair; a judge (an LLM, or the simulated truth judge) decides only the
uncertain band and a small stratified sample; every answer becomes a label that retrains the model.

Quick start:
    >>> import splink_er
    >>> result = splink_er.run(splink_er.demo_settings_path(), quiet=True,
    ...                        overrides=["output_dir=/tmp/se_init", "labels.path=/tmp/se_init/labels.jsonl"])
    >>> sorted(result.decisions.columns)[:3]
    ['conflict', 'decided_by', 'final_match']
"""

from importlib.resources import files
from pathlib import Path

from .decision_log import DecisionLog
from .judges import Judge, JudgeDecision, JudgeFatalError, PairContext, TruthJudge
from .labels import LabelStore, make_label
from .loop import Job, RunResult, prepare, retrain, run
from .settings import Settings, SettingsError, load_settings
from .sources import InputError


def demo_settings_path() -> Path:
    """Settings of the bundled demo (Splink's fake_1000 persons, deduplicated, with the simulated truth judge)."""
    return Path(str(files("splink_er") / "demo" / "fake_1000.yaml"))


__all__ = [
    "DecisionLog", "InputError", "Job", "Judge", "JudgeFatalError", "JudgeDecision", "LabelStore", "PairContext", "RunResult", "Settings",
    "SettingsError", "TruthJudge", "demo_settings_path", "load_settings", "make_label", "prepare", "retrain", "run",
]

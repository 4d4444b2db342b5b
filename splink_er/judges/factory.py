"""Build the judge the settings ask for (and say why, when the choice was automatic)."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import JudgeConfigError
from ..settings import DEFAULT_MODELS, LLMJudgeSettings, Settings
from ..sources import column_lookup
from .base import Judge
from .escalation import EscalatingJudge
from .llm import CostMeter
from .majority import MajorityJudge
from .prompt import system_instruction
from .truth import TruthJudge


def find_key(env_names: tuple[str, ...]) -> tuple[str | None, str | None]:
    """(key, variable name) of the first variable set; the key itself is never printed."""
    for name in env_names:
        value = os.environ.get(name, "").strip()
        if value:
            return value, name
    return None, None


def resolve_kind(settings: Settings) -> tuple[str, str]:
    """The judge kind to use and a note on why (for `auto`: gemini when a key is present, else none)."""
    j = settings.judge
    if j.kind != "auto":
        return j.kind, ""
    _, var = find_key(j.key_envs("gemini"))
    if var:
        return "gemini", f"auto: {var} is set"
    return "none", f"auto: no {' or '.join(j.key_envs('gemini'))} set"


def _llm_judge(
    judge_settings: LLMJudgeSettings,
    kind: str,
    model: str,
    base_url: str | None,
    key_envs: tuple[str, ...],
    meter: CostMeter,
):
    key, _ = find_key(key_envs)
    if key is None and (kind == "gemini" or base_url is None):
        raise JudgeConfigError(
            f"judge.kind {kind} needs an API key: set the environment variable "
            f"{' or '.join(key_envs)}, or point judge.api_key_env at the variable that holds "
            "it (the key itself never goes in settings)"
        )
    if kind == "gemini":
        from .gemini import GeminiJudge as cls
    else:
        from .openai_compat import OpenAIJudge as cls
    return cls(judge_settings, model=model, api_key=key or "", base_url=base_url, cost_meter=meter)


def make_judge(settings: Settings, con=None, loaded=None) -> tuple[Judge | None, str]:
    """(judge or None for `none`, a note on how it was chosen)."""
    kind, note = resolve_kind(settings)
    j = settings.judge
    if kind == "none":
        return None, note
    if kind == "truth":
        column = settings.judge_truth_column
        truth = column_lookup(con, loaded, column)
        askers = [
            TruthJudge(
                truth,
                column,
                error_rate=j.error_rate,
                seed=j.seed,
                latency_seconds=j.latency_seconds,
                system=system_instruction(j.domain, j.show_score),
                ask=i,
            )
            for i in range(j.repeats)
        ]
        return (askers[0] if j.repeats == 1 else MajorityJudge(askers)), note
    if kind == "replay":
        from ..decision_log import judge_answers
        from .replay import ReplayJudge

        log = Path(j.log or settings.decision_log_path)
        if not log.exists():
            raise JudgeConfigError(
                f"replay: decision log {log} not found; set judge.log to the decision_log.jsonl of the run to replay"
            )
        try:
            run_id, answers = judge_answers(log, j.run)
        except ValueError as e:
            raise JudgeConfigError(f"replay: {e}") from None
        return ReplayJudge(answers, run_id, log), note
    meter = CostMeter(j.max_cost)
    try:
        judge = _llm_judge(j, kind, j.model or DEFAULT_MODELS[kind], j.base_url, j.key_envs(kind), meter)
        e = j.escalation
        if e is not None:
            e_kind = e.kind or kind
            envs = (e.api_key_env,) if e.api_key_env else j.key_envs(e_kind)
            second = _llm_judge(j, e_kind, e.model, e.base_url or j.base_url, envs, meter)
            judge = EscalatingJudge(judge, second, e.threshold)
    except ValueError as err:
        raise JudgeConfigError(str(err)) from None
    return (judge if j.repeats == 1 else MajorityJudge([judge] * j.repeats)), note

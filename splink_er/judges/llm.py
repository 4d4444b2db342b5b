"""What every LLM judge shares: rate limit, retries, validation and re-asks, tokens and cost.

Providers (gemini.py, openai_compat.py) only implement `_call(text) -> CallResult`: one request, no retries.
Everything else is here, so both behave the same:
- call starts are spaced to stay under `judge.rpm`; at most `judge.concurrency` calls are in flight (run_judge);
- 408, 429, 5xx, timeouts and transport errors are retried with exponential backoff and jitter (a Retry-After
  header wins); 401/403/404 stop the run (the key or model is wrong, every call would fail);
- each answer is validated per question; the questions with a bad answer are asked again in a smaller batch
  (`judge.reasks` times), then sent to needs_review with the reason. No answer is ever made up;
- tokens come from the responses; cost from `judge.prices`; `judge.max_cost` stops new calls once spent.
The API key lives only in the client; every message that leaves this module is scrubbed of it.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import sys
import time
import uuid
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlparse

from ..errors import JudgeFatalError
from ..pairs import JudgeDecision, PairContext
from ..settings import LLMJudgeSettings, PriceSettings
from .base import Judge, pack
from .prompt import (
    PROMPT_VERSION,
    Question,
    estimate_tokens,
    make_questions,
    render,
    response_schema,
    system_instruction,
    validate,
)


@dataclass
class CallResult:
    text: str | None
    input_tokens: int
    output_tokens: int
    finish_reason: str | None = None


class CallFailed(Exception):
    """A call that failed for good (after retries, or not retryable); its pairs go to needs_review."""


class RateLimiter:
    """Spaces call starts at least 60/rpm seconds apart: a steady rate, never a burst the server would refuse.
    Holds no lock, so one limiter works across event loops (each `run_judge` runs its own)."""

    def __init__(self, rpm: int) -> None:
        self.interval = 60.0 / rpm if rpm else 0.0
        self._next = 0.0

    async def acquire(self) -> None:
        if not self.interval:
            return
        now = time.monotonic()
        slot = max(now, self._next)
        self._next = slot + self.interval  # reserved before awaiting: no other task can take this slot
        if slot > now:
            await asyncio.sleep(slot - now)


class CostMeter:
    """Money spent by the judges of one run (shared by a judge and its escalation judge).

    A call reserves its estimated cost before it starts and settles the real cost when it returns, so calls
    in flight together cannot overshoot `max_cost` by more than the estimates' error."""

    def __init__(self, max_cost: float | None) -> None:
        self.max_cost = max_cost
        self.spent = 0.0
        self.reserved = 0.0

    @property
    def exhausted(self) -> bool:
        return self.max_cost is not None and self.spent >= self.max_cost

    def reserve(self, estimate: float) -> bool:
        if self.max_cost is not None and self.spent + self.reserved + estimate > self.max_cost:
            return False
        self.reserved += estimate
        return True

    def settle(self, estimate: float, actual: float) -> None:
        self.reserved -= estimate
        self.spent += actual


def is_transport_error(exc: BaseException) -> bool:
    """Timeouts and network failures, from asyncio or whichever HTTP client raised them. Only clients already
    imported are consulted: an exception cannot come from one that is not (and importing openai costs ~0.4 s)."""
    errors: list[type[BaseException]] = [asyncio.TimeoutError, TimeoutError, ConnectionError]
    for name in ("httpx", "httpx2"):
        mod = sys.modules.get(name)
        errors += [getattr(mod, n) for n in ("TransportError", "TimeoutException") if hasattr(mod, n)]
    if "openai" in sys.modules:
        openai = sys.modules["openai"]
        errors += [openai.APIConnectionError, openai.APITimeoutError]
    return isinstance(exc, tuple(errors))


FATAL_STATUS = {401: "the API key was rejected", 403: "access denied for this key", 404: "model or endpoint not found"}


def status_of(exc: BaseException) -> int | None:
    """HTTP status of a provider exception (google-genai: .code, openai: .status_code)."""
    for attr in ("status_code", "code"):
        v = getattr(exc, attr, None)
        if isinstance(v, int) and 100 <= v < 600:
            return v
    return None


def retry_after_of(exc: BaseException) -> float | None:
    headers = getattr(getattr(exc, "response", None), "headers", None)
    try:
        value = headers.get("retry-after") if headers is not None else None
        return min(float(value), 300.0) if value is not None else None
    except (TypeError, ValueError):
        return None


def is_loopback(url: str | None) -> bool:
    """A local endpoint (tests, local gateways): proxy variables are ignored for it."""
    return bool(url) and urlparse(url).hostname in ("127.0.0.1", "localhost", "::1")


def is_local(url: str | None) -> bool:
    """This machine or a private network (Ollama, vLLM on a team box): nobody bills per token there."""
    import ipaddress

    host = urlparse(url).hostname if url else None
    if not host:
        return False
    if host == "localhost" or host.endswith((".local", ".internal", ".lan")):
        return True
    try:
        return ipaddress.ip_address(host).is_private
    except ValueError:
        return False


def shown_endpoint(url: str | None, default: str) -> str:
    """An endpoint as a log may show it: scheme, host, port and path only (user:password@ and query strings,
    where some gateways carry keys, are dropped)."""
    if not url:
        return default
    u = urlparse(url)
    port = f":{u.port}" if u.port else ""
    return f"{u.scheme}://{u.hostname}{port}{u.path.rstrip('/')}"


class LLMJudge(Judge):
    """Base of LLM judges; see the module docstring. Subclasses set `name` and implement `_new_client` and
    `_call`."""

    name = "llm"
    default_endpoint = "the provider's API"

    def __init__(
        self,
        settings: LLMJudgeSettings,
        *,
        model: str,
        api_key: str,
        base_url: str | None,
        cost_meter: CostMeter | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.model = model
        self.base_url = base_url
        self._secret = api_key
        self.system = system_instruction(settings.domain, settings.show_score)
        self.schema = response_schema()
        self.price: PriceSettings | None = settings.prices.get(model)
        self.cost_meter = cost_meter or CostMeter(settings.max_cost)
        self.limiter = limiter or RateLimiter(settings.rpm)
        self._client, self._client_loop = None, None
        if self.cost_meter.max_cost is not None and self.price is None:
            raise ValueError(
                f"judge.max_cost needs a price for model {model!r}: add judge.prices.{model} "
                "(input_per_million, output_per_million)"
            )

    # ---- identity ------------------------------------------------------------------------------------
    @property
    def method(self) -> dict:
        return {
            "kind": self.name,
            "model": self.model,
            "endpoint": shown_endpoint(self.base_url, "default"),  # never user:password@ or ?key=
            "prompt_version": PROMPT_VERSION,
            "prompt_sha": hashlib.sha256(self.system.encode()).hexdigest()[:12],
            "temperature": self.settings.temperature,
            "simulated": False,
        }

    @property
    def endpoint(self) -> str:
        """Where the calls go, safe to print."""
        return shown_endpoint(self.base_url, self.default_endpoint)

    @property
    def unpriced(self) -> bool:
        """Calls cost money that is not counted: no judge.prices entry, and not a local endpoint."""
        return self.price is None and not is_local(self.base_url)

    def scrub(self, text: str) -> str:
        """Remove the API key from any text that may be shown or written."""
        return text.replace(self._secret, "***") if self._secret else text

    def _cost(self, input_tokens: int, output_tokens: int) -> float:
        if self.price is None:
            return 0.0
        return (input_tokens * self.price.input_per_million + output_tokens * self.price.output_per_million) / 1e6

    # ---- provider hooks ------------------------------------------------------------------------------
    @abstractmethod
    def _new_client(self):
        """The provider SDK's async client (built lazily: the SDKs are imported on first use)."""

    def client(self):
        """The provider client of the running event loop: every run_judge call runs its own loop, and an async
        client must not outlive the loop it was made in."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            self._client, self._client_loop = self._new_client(), loop
        return self._client

    @abstractmethod
    async def _call(self, text: str) -> CallResult:
        """One request to the provider, no retries."""

    # ---- one call, with retries ----------------------------------------------------------------------
    async def _call_with_retries(self, text: str) -> tuple[CallResult, int, float]:
        s = self.settings
        for attempt in range(s.max_retries + 1):
            await self.limiter.acquire()
            t0 = time.perf_counter()
            try:
                result = await asyncio.wait_for(self._call(text), timeout=s.timeout_seconds)
                return result, attempt + 1, time.perf_counter() - t0
            except Exception as exc:
                status = status_of(exc)
                transport = is_transport_error(exc)
                if status is None and not transport:
                    raise  # not an HTTP or network failure: a bug, which must surface, not become needs_review
                if status in FATAL_STATUS:
                    raise JudgeFatalError(
                        f"{self.name} judge: HTTP {status}, {FATAL_STATUS[status]} "
                        f"(model {self.model!r}): {self.scrub(str(exc))[:300]}"
                    ) from None
                retryable = transport or status in (408, 429) or (status or 0) >= 500
                what = f"HTTP {status}" if status else type(exc).__name__
                if not retryable or attempt == s.max_retries:
                    tries = f" after {attempt + 1} attempts" if retryable else ""
                    raise CallFailed(f"{what}{tries}: {self.scrub(str(exc))[:200]}") from None
                self.usage.retries += 1
                delay = retry_after_of(exc)
                if delay is None:
                    delay = min(60.0, s.backoff_seconds * 2**attempt) * random.uniform(0.5, 1.0)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    # ---- one prompt: render, call, validate ----------------------------------------------------------
    async def _ask(self, questions: list[Question]) -> tuple[dict, dict[str, str], dict, bool]:
        """Returns (verdicts by pair key, problems by question id, call info, whether re-asking may help)."""
        prompt = render(questions, self.settings.show_score)
        n_pairs = sum(len(q.pairs) for q in questions)
        # Reserve generously: ~40 output tokens (160 characters) per pair.
        estimate = self._cost(*estimate_tokens(self.system, prompt.text, 160 * n_pairs))
        if not self.cost_meter.reserve(estimate):
            return {}, {q.qid: f"judge.max_cost (${self.cost_meter.max_cost}) reached" for q in questions}, {}, False
        try:
            result, attempts, latency = await self._call_with_retries(prompt.text)
        except CallFailed as e:
            self.cost_meter.settle(estimate, 0.0)
            self.usage.failed_calls += 1
            return {}, {q.qid: f"call failed: {e}" for q in questions}, {"failed": True}, False
        except BaseException:
            self.cost_meter.settle(estimate, 0.0)
            raise
        cost = self._cost(result.input_tokens, result.output_tokens)
        self.cost_meter.settle(estimate, cost)
        u = self.usage
        u.calls += 1
        u.input_tokens += result.input_tokens
        u.output_tokens += result.output_tokens
        u.cost_usd += cost
        verdicts, problems = validate(result.text, prompt)
        if problems and result.finish_reason not in (None, "STOP", "stop"):
            problems = {q: f"{why} (finish reason {result.finish_reason})" for q, why in problems.items()}
        call = {
            "call_id": uuid.uuid4().hex[:16],
            "model": self.model,
            "pairs_in_call": n_pairs,
            "input_tokens": round(result.input_tokens / n_pairs, 1),
            "output_tokens": round(result.output_tokens / n_pairs, 1),
            "cost_usd": cost / n_pairs,
            "latency_seconds": round(latency, 3),
            "attempts": attempts,
        }
        return verdicts, problems, call, True

    async def judge_batch(self, pairs: Sequence[PairContext]) -> list[JudgeDecision]:
        self.usage.pairs += len(pairs)
        pending = make_questions(pairs)
        decided: dict = {}
        problem: dict = {}  # pair key -> the latest reason it has no valid answer
        failed: set = set()  # pair keys whose latest call failed (no answer came back at all)
        size = len(pairs)
        for round_no in range(self.settings.reasks + 1):
            if not pending:
                break
            if round_no:
                size = max(1, -(-size // 2))  # a smaller batch: long prompts are where answers go missing
                self.usage.reasked_pairs += sum(len(q.pairs) for q in pending)
            chunks = pack(pending, size, weight=lambda q: len(q.pairs))
            results = await asyncio.gather(*(self._ask(c) for c in chunks))
            pending = []
            for chunk, (verdicts, problems, call, reaskable) in zip(chunks, results):
                for key, v in verdicts.items():
                    decided[key] = (v, call)
                for q in chunk:
                    if q.qid in problems:
                        problem.update({p.key: problems[q.qid] for p in q.pairs})
                        keys = {p.key for p in q.pairs}
                        failed = (failed | keys) if call.get("failed") else (failed - keys)
                        if reaskable:
                            pending.append(q)
        out = []
        for p in pairs:
            if p.key in decided:
                v, call = decided[p.key]
                out.append(JudgeDecision(p.key, v.match, v.confidence, v.reasoning, call=call))
            else:
                why = problem.get(p.key, "no valid answer")
                out.append(
                    JudgeDecision(p.key, None, 0.0, f"needs review: {why}", needs_review=True, failed=p.key in failed)
                )
        return out

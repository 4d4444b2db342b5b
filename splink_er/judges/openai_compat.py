"""Judge for any OpenAI-compatible chat endpoint (OpenAI, Ollama, vLLM, llama.cpp server) via the `openai` package.

Asks for `json_schema` structured output; a server that refuses it (llama.cpp answers HTTP 500, others 400) is
asked again with `json_object` plus the schema, and the judge stays in that mode. The client's own retries are
off so that llm.py's policy applies to every provider alike.
"""

from __future__ import annotations

import copy
from urllib.parse import urlparse

from .llm import CallResult, LLMJudge, is_loopback, status_of


def _without_bounds(schema: dict) -> dict:
    # Strict json_schema modes reject some keywords on some servers; the range is checked on our side anyway.
    schema = copy.deepcopy(schema)
    for part in ("decisions", "selections"):
        schema["properties"][part]["items"]["properties"]["confidence"] = {"type": "number"}
    return schema


class OpenAIJudge(LLMJudge):
    name = "openai"
    default_endpoint = "https://api.openai.com/v1"

    def __init__(self, settings, **kwargs) -> None:
        super().__init__(settings, **kwargs)
        url = self.base_url
        if url and urlparse(url).path in ("", "/"):
            url = url.rstrip("/") + "/v1"  # the OpenAI convention; Ollama and vLLM serve under /v1 too
        self._url = url
        self.mode = "json_schema"
        self._schema_accepted = False

    def _new_client(self):
        import httpx2  # the openai package's HTTP library (a fork of httpx)
        import openai

        http = httpx2.AsyncClient(trust_env=not is_loopback(self._url), timeout=self.settings.timeout_seconds)
        return openai.AsyncOpenAI(
            api_key=self._secret or "no-key",
            base_url=self._url,
            max_retries=0,
            timeout=self.settings.timeout_seconds,
            http_client=http,
        )

    def _response_format(self, mode: str) -> dict:
        schema = _without_bounds(self.schema)
        if mode == "json_schema":
            return {"type": "json_schema", "json_schema": {"name": "judge_answer", "schema": schema, "strict": True}}
        return {"type": "json_object", "schema": schema}

    async def _create(self, mode: str, text: str) -> object:
        return await self.client().chat.completions.create(
            model=self.model,
            temperature=self.settings.temperature,
            response_format=self._response_format(mode),
            messages=[{"role": "system", "content": self.system}, {"role": "user", "content": text}],
        )

    async def _call(self, text: str) -> CallResult:
        if self.mode == "json_schema":
            try:
                resp = await self._create("json_schema", text)
                self._schema_accepted = True
            except Exception as exc:
                # Probe json_object only while json_schema has never worked and the error is about the response
                # format (llama.cpp: HTTP 500 "response_format type must be one of ..."); other errors are retried.
                about_format = any(w in str(exc).lower() for w in ("response_format", "json_schema", "schema"))
                if self._schema_accepted or status_of(exc) not in (400, 422, 500, 501) or not about_format:
                    raise
                try:
                    resp = await self._create("json_object", text)
                except Exception:
                    raise exc from None
                self.mode = "json_object"
        else:
            resp = await self._create("json_object", text)
        choice = resp.choices[0] if resp.choices else None
        usage = resp.usage
        return CallResult(
            choice.message.content if choice else None,
            (usage.prompt_tokens or 0) if usage else 0,
            (usage.completion_tokens or 0) if usage else 0,
            choice.finish_reason if choice else None,
        )

"""Gemini judge on the official google-genai SDK: structured JSON output, temperature from settings.

The SDK's own retries are off (our retry policy in llm.py honours Retry-After, the SDK's does not), the base
URL and API version come from settings, Vertex mode is never switched on by the environment, and proxy
variables are ignored for loopback endpoints (tests and local gateways).
"""

from __future__ import annotations

from .llm import CallResult, LLMJudge, is_loopback


class GeminiJudge(LLMJudge):
    name = "gemini"
    default_endpoint = "https://generativelanguage.googleapis.com"

    def _new_client(self):
        from google import genai
        from google.genai import types

        no_proxy = {"trust_env": False} if is_loopback(self.base_url) else {}
        options = types.HttpOptions(
            base_url=self.base_url,
            api_version=self.settings.api_version,
            timeout=int(self.settings.timeout_seconds * 1000),
            client_args=no_proxy,
            async_client_args=no_proxy,
        )
        return genai.Client(api_key=self._secret, vertexai=False, http_options=options)

    async def _call(self, text: str) -> CallResult:
        from google.genai import types

        client = self.client()
        config = types.GenerateContentConfig(
            system_instruction=self.system,
            temperature=self.settings.temperature,
            response_mime_type="application/json",
            response_json_schema=self.schema,
        )
        resp = await client.aio.models.generate_content(model=self.model, contents=text, config=config)
        usage = resp.usage_metadata
        finish = None
        if resp.candidates and resp.candidates[0].finish_reason is not None:
            finish = getattr(resp.candidates[0].finish_reason, "value", str(resp.candidates[0].finish_reason))
        try:
            out = resp.text
        except ValueError:  # no text part (e.g. blocked): validation reports it as an empty answer
            out = None
        return CallResult(
            out,
            (usage.prompt_token_count or 0) if usage else 0,
            (usage.candidates_token_count or 0) if usage else 0,
            finish,
        )

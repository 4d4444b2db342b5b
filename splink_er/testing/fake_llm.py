"""A SIMULATED LLM on 127.0.0.1 that speaks Gemini's and OpenAI's REST shapes, for offline tests and benchmarks.

The real clients (google-genai, openai) talk to it over HTTP exactly as they would to the provider:
- Gemini: POST /{version}/models/{model}:generateContent, answering candidates + usageMetadata;
- OpenAI-compatible: POST /v1/chat/completions, answering choices + usage; with `reject_json_schema` it refuses
  json_schema response formats with HTTP 500, as llama.cpp's server does.
It reads the questions from the prompt's data block and answers them with a `brain` (default: a field
similarity heuristic, not a language model). It can inject latency, a requests-per-minute limit (429 with
Retry-After) and faults, and it records what it was asked so tests can count calls and pairs.

    >>> with FakeLLMServer(latency=0.0) as server:
    ...     server.url.startswith("http://127.0.0.1:")
    True
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jellyfish

DATA_BLOCK = re.compile(r"<<<DATA (\w+)>>>\n(.*)\n<<<END DATA \1>>>", re.S)
FAULTS = {
    "429",
    "500",
    "503",
    "401",
    "timeout",
    "malformed",
    "fenced",
    "drop",
    "duplicate",
    "unknown",
    "bad_confidence",
    "bad_choice",
    "empty",
}

Brain = Callable[[dict, str], dict]


def _similarity(a: dict, b: dict) -> float:
    scores = [
        jellyfish.jaro_winkler_similarity(str(a[k]).lower(), str(b[k]).lower())
        for k in a
        if k in b and a[k] not in (None, "") and b[k] not in (None, "")
    ]
    return sum(scores) / len(scores) if scores else 0.0


def similarity_brain(data: dict, model: str, threshold: float = 0.9) -> dict:
    """SIMULATED answers: mean Jaro-Winkler similarity of the shared fields against a threshold."""
    decisions, selections = [], []
    for q in data.get("pairs", []):
        s = _similarity(q["record_a"], q["record_b"])
        decisions.append(
            {
                "pair_id": q["pair_id"],
                "match": s >= threshold,
                "confidence": round(min(0.99, 0.55 + 4 * abs(s - threshold)), 3),
                "reasoning": f"simulated: mean field similarity {s:.2f}",
            }
        )
    for g in data.get("groups", []):
        scored = sorted(((_similarity(g["record"], c["record"]), c["pair_id"]) for c in g["candidates"]), reverse=True)
        best, pid = scored[0]
        chosen = pid if best >= threshold else "none"
        # The close alternative: the best candidate not chosen.
        runner_up = next((c for _, c in scored if c != chosen), "none")
        selections.append(
            {
                "group_id": g["group_id"],
                "chosen_pair_id": chosen,
                "runner_up_pair_id": runner_up,
                "confidence": round(min(0.99, 0.55 + 4 * abs(best - threshold)), 3),
                "reasoning": f"simulated: best candidate similarity {best:.2f}",
            }
        )
    return {"decisions": decisions, "selections": selections}


class _Server(ThreadingHTTPServer):
    # The default backlog of 5 drops connections under dozens of concurrent calls.
    request_queue_size = 1024
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):  # a client gave up (timeout)
            super().handle_error(request, client_address)


class _Bucket:
    """Token bucket: `rpm` per minute with one second of burst."""

    def __init__(self, rpm: int) -> None:
        self.rate = rpm / 60.0
        self.capacity = max(1.0, self.rate)
        self.tokens = self.capacity
        self.t = time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> float:
        """0 if allowed, else seconds until a token is free."""
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.t) * self.rate)
            self.t = now
            if self.tokens >= 1:
                self.tokens -= 1
                return 0.0
            return (1 - self.tokens) / self.rate


class FakeLLMServer:
    """Loopback server; see the module docstring. `faults`: a list consumed one per request (None = no fault),
    or a callable(request_number, model) -> fault name or None."""

    def __init__(
        self,
        brain: Brain | None = None,
        *,
        latency: float = 0.0,
        rpm: int = 0,
        faults: list | Callable | None = None,
        reject_json_schema: bool = False,
        timeout_sleep: float = 3.0,
        echo_key_in_errors: bool = False,
        port: int = 0,
    ) -> None:
        self.brain = brain or similarity_brain
        self.latency = latency
        self.bucket = _Bucket(rpm) if rpm else None
        self.faults = faults if callable(faults) else list(faults or [])
        self.reject_json_schema = reject_json_schema
        self.timeout_sleep = timeout_sleep
        self.echo_key_in_errors = echo_key_in_errors  # like gateways that quote the key they refused
        self.lock = threading.Lock()
        self.requests = 0
        self.status_counts: dict[int, int] = {}
        self.answered: list[dict] = []  # per answered call: model, questions (the data block), response format
        self.seen_headers: list[dict] = []
        self._server = _Server(("127.0.0.1", port), self._handler())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # ---- lifecycle -----------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeLLMServer:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- bookkeeping ---------------------------------------------------------------------------------
    @property
    def calls(self) -> int:
        return len(self.answered)

    @property
    def pairs_answered(self) -> int:
        return sum(
            len(c["data"].get("pairs", [])) + sum(len(g["candidates"]) for g in c["data"].get("groups", []))
            for c in self.answered
        )

    def _next_fault(self, n: int, model: str):
        if callable(self.faults):
            return self.faults(n, model)
        return self.faults.pop(0) if self.faults else None

    # ---- HTTP ----------------------------------------------------------------------------------------
    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def _send(self, status: int, body: dict | str, headers: dict | None = None) -> None:
                raw = (body if isinstance(body, str) else json.dumps(body)).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(raw)
                with server.lock:
                    server.status_counts[status] = server.status_counts.get(status, 0) + 1

            def do_GET(self) -> None:
                self._send(200, {"ok": True})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                with server.lock:
                    server.requests += 1
                    n = server.requests
                    server.seen_headers.append(dict(self.headers))
                gemini = re.match(r"^/[^/]+/models/([^/:]+):generateContent", self.path)
                if gemini:
                    model = gemini.group(1)
                    system = " ".join(p.get("text", "") for p in (body.get("systemInstruction") or {}).get("parts", []))
                    user = " ".join(p.get("text", "") for c in body.get("contents", []) for p in c.get("parts", []))
                    fmt = "json_schema" if "responseJsonSchema" in body.get("generationConfig", {}) else "none"
                elif self.path.rstrip("/").endswith("/chat/completions"):
                    model = body.get("model", "")
                    msgs = body.get("messages", [])
                    system = " ".join(m["content"] for m in msgs if m["role"] == "system")
                    user = " ".join(m["content"] for m in msgs if m["role"] == "user")
                    fmt = (body.get("response_format") or {}).get("type", "none")
                    if fmt == "json_schema" and server.reject_json_schema:
                        return self._send(
                            500,
                            {
                                "error": {
                                    "message": 'response_format type must be one of "text" or '
                                    '"json_object", but got: json_schema',
                                    "type": "server_error",
                                }
                            },
                        )
                else:
                    return self._send(404, {"error": {"message": f"no route {self.path}", "code": 404}})
                fault = server._next_fault(n, model)
                if server.latency:
                    time.sleep(server.latency)
                if server.bucket is not None:
                    wait = server.bucket.take()
                    if wait:
                        return self._send(
                            429,
                            {"error": {"code": 429, "message": "rate limit", "status": "RESOURCE_EXHAUSTED"}},
                            {"Retry-After": f"{wait:.3f}"},
                        )
                if fault in ("429", "500", "503", "401"):
                    key = self.headers.get("x-goog-api-key") or self.headers.get("Authorization", "")
                    quoted = f" (key {key})" if server.echo_key_in_errors else ""
                    return self._send(
                        int(fault),
                        {"error": {"code": int(fault), "message": f"injected {fault}{quoted}", "status": "INJECTED"}},
                        {"Retry-After": "0.05"} if fault == "429" else None,
                    )
                if fault == "timeout":
                    time.sleep(server.timeout_sleep)
                match = DATA_BLOCK.search(user)
                data = json.loads(match.group(2)) if match else {}
                answer = server.brain(data, model)
                text = json.dumps(answer)
                if fault == "malformed":
                    text = text[: len(text) // 2]
                elif fault == "fenced":
                    text = f"```json\n{text}\n```"
                elif fault == "empty":
                    text = ""
                elif fault in ("drop", "duplicate", "unknown", "bad_confidence", "bad_choice"):
                    text = json.dumps(_corrupt(answer, fault))
                with server.lock:
                    server.answered.append(
                        {"model": model, "data": data, "format": fmt, "fault": fault, "system": system}
                    )
                in_tok, out_tok = (len(system) + len(user)) // 4, len(text) // 4
                if gemini:
                    return self._send(
                        200,
                        {
                            "candidates": [
                                {"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP"}
                            ],
                            "usageMetadata": {
                                "promptTokenCount": in_tok,
                                "candidatesTokenCount": out_tok,
                                "totalTokenCount": in_tok + out_tok,
                            },
                            "modelVersion": model,
                        },
                    )
                return self._send(
                    200,
                    {
                        "id": f"chatcmpl-{n}",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": model,
                        "choices": [
                            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                        ],
                        "usage": {
                            "prompt_tokens": in_tok,
                            "completion_tokens": out_tok,
                            "total_tokens": in_tok + out_tok,
                        },
                    },
                )

        return Handler


def _corrupt(answer: dict, fault: str) -> dict:
    answer = json.loads(json.dumps(answer))
    d, sel = answer["decisions"], answer["selections"]
    if fault == "drop" and d:
        d.pop(0)
    elif fault == "duplicate" and d:
        d.append(dict(d[0], match=not d[0]["match"]))
    elif fault == "unknown":
        d.append({"pair_id": "p999", "match": True, "confidence": 0.9, "reasoning": "invented"})
    elif fault == "bad_confidence" and d:
        d[0]["confidence"] = 1.7
    elif fault == "bad_choice" and sel:
        sel[0]["chosen_pair_id"] = "p999"
    return answer


def serve_forever(port: int, latency: float, rpm: int, reject_json_schema: bool, start: bool = True):
    """Run a server in the foreground (the `splink-er fake-llm` command). With start=False: bind the port (an
    OSError if it is taken) and return the function that serves."""
    server = FakeLLMServer(latency=latency, rpm=rpm, reject_json_schema=reject_json_schema, port=port)

    def serve() -> None:
        try:
            server._server.serve_forever()
        finally:
            server._server.server_close()

    return serve if not start else serve()

"""
A mock OpenAI-compatible chat-completions server on 127.0.0.1, for tests and benchmarks.

It answers instantly with a pluggable `answer(messages) -> str` function and can inject faults per
request: HTTP 500, 429 with Retry-After, a hang past the client's timeout, a closed connection, or a
malformed JSON body. A raw asyncio HTTP/1.1 keep-alive server: no framework between the socket and
the answer, so a benchmark measures the client, not the server.

Standalone: `python -m tools.testing.mock_server --port 8000 --answer reverse_text`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import subprocess as _sp
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tools.testing.answers import ANSWERS, Answer, message_text

#: A fault plan: (request index, request body) -> a fault name or None for a normal answer.
FaultPlan = Callable[[int, dict[str, Any]], "str | None"]

#: The faults a request can get: name -> what the client sees.
FAULTS = {
    "500": "HTTP 500 with a JSON error body",
    "429": "HTTP 429 with a Retry-After header (seconds: `retry_after`)",
    "hang": "no answer for `hang_s` seconds (past the client's timeout), then the connection closes",
    "close": "the connection closes without an answer",
    "malformed": "HTTP 200 with a truncated JSON body",
    "context_length": "HTTP 400 saying the conversation exceeds the model's context (OpenAI's and vLLM's wording)",
}
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 429: "Too Many Requests", 500: "Internal Server Error"}


# --- the server ------------------------------------------------------------------------------------
class MockChatServer:
    """
    An OpenAI-compatible `/v1/chat/completions` server on 127.0.0.1, in a background thread or a subprocess.

    `answer` is a name from `ANSWERS` or a function of the request's messages (OpenAI dicts) returning the
    reply text. Faults (see `FAULTS`) come from `faults`, a schedule by request index (`["500", None, "429"]`:
    the first request gets a 500, the second an answer, ...) or a function `(index, body) -> fault or None`,
    and from `fault_rates`, the probability of each fault for any other request (seeded by `seed`).
    `GET /stats` returns the request count and the faults served so far.

    Usage example:
    ```python
    import openai
    from tools.testing import MockChatServer

    with MockChatServer("reverse_text", faults=["500"]) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="none", max_retries=1)
        reply = client.chat.completions.create(model="mock", messages=[{"role": "user", "content": "abc"}])
        assert reply.choices[0].message.content == "<reversed_text>cba</reversed_text>"
        assert server.stats() == {"requests": 2, "faults": {"500": 1}}  # the SDK retried the 500
    ```

    With `subprocess=True` the server runs in its own Python process (no GIL shared with the client:
    use it for throughput benchmarks); `answer` must then be a name and `faults` a list.
    """

    def __init__(
        self,
        answer: str | Answer = "reverse_text",
        *,
        faults: Sequence[str | None] | FaultPlan | None = None,
        fault_rates: Mapping[str, float] | None = None,
        seed: int = 0,
        retry_after: float = 0.0,
        hang_s: float = 3600.0,
        host: str = "127.0.0.1",
        port: int = 0,
        subprocess: bool = False,
    ) -> None:
        if isinstance(answer, str) and answer not in ANSWERS:
            raise ValueError(f"MockChatServer: unknown answer {answer!r}; use one of {sorted(ANSWERS)} or a function")
        names = [*(faults if isinstance(faults, Sequence) else []), *(fault_rates or {})]
        unknown = sorted({str(name) for name in names if name is not None and name not in FAULTS})
        if unknown:
            raise ValueError(f"MockChatServer: unknown faults {unknown}; use {sorted(FAULTS)}")
        if subprocess and (not isinstance(answer, str) or callable(faults)):
            raise ValueError("MockChatServer(subprocess=True) needs `answer` as a name and `faults` as a list")
        self.answer_name = answer if isinstance(answer, str) else getattr(answer, "__name__", "custom")
        self.answer: Answer = ANSWERS[answer] if isinstance(answer, str) else answer
        self.faults = faults
        self.fault_rates = dict(fault_rates or {})
        self.seed, self.retry_after, self.hang_s = seed, retry_after, hang_s
        self.host, self.port, self.subprocess = host, port, subprocess
        self.requests = 0
        self.faults_served: Counter[str] = Counter()
        self._rng = random.Random(seed)
        self._thread: threading.Thread | None = None
        self._process: _sp.Popen[str] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._connections: set[asyncio.Task[Any]] = set()
        self._last_head = b""

    # --- lifecycle -------------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """The OpenAI base URL, e.g. `http://127.0.0.1:PORT/v1` (the port is known once started)."""
        return f"http://{self.host}:{self.port}/v1"

    def start(self) -> MockChatServer:
        """Start serving; returns once the port accepts connections."""
        if self.subprocess:
            self._start_process()
            return self
        self._thread = threading.Thread(target=self._run_thread, name="mock-chat-server", daemon=True)
        self._thread.start()
        self._ready.wait(timeout=30)
        if self._error is not None:
            raise RuntimeError(f"MockChatServer failed to start: {self._error}") from self._error
        if not self._ready.is_set():
            raise RuntimeError("MockChatServer did not start within 30 s")
        return self

    def stop(self) -> None:
        """Stop serving and drop open connections (hanging requests included)."""
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except _sp.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        if self._thread is not None and self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> MockChatServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stats(self) -> dict[str, Any]:
        """Requests to /chat/completions so far and the faults served, by name (`GET /stats` answers the same)."""
        if self._process is not None:
            import urllib.request

            with urllib.request.urlopen(f"http://{self.host}:{self.port}/stats", timeout=10) as response:
                result: dict[str, Any] = json.loads(response.read())
                return result
        return {"requests": self.requests, "faults": dict(self.faults_served)}

    def last_headers(self) -> dict[str, str]:
        """The headers of the last chat-completions request, lower-case names (thread mode only)."""
        lines = self._last_head.decode("latin-1").split("\r\n")[1:]
        pairs = (line.partition(":") for line in lines if ":" in line)
        return {name.strip().lower(): value.strip() for name, _, value in pairs}

    def _start_process(self) -> None:
        command = [sys.executable, "-m", "tools.testing.mock_server", "--host", self.host,
                   "--port", str(self.port), "--answer", str(self.answer_name), "--seed", str(self.seed),
                   "--retry-after", str(self.retry_after), "--hang-s", str(self.hang_s)]  # fmt: skip
        if self.faults:
            command += ["--faults", ",".join(fault or "" for fault in self.faults)]  # type: ignore[union-attr]
        for name, rate in self.fault_rates.items():
            command += ["--fault-rate", f"{name}={rate}"]
        root = Path(__file__).resolve().parents[2]  # `tools` is imported from the repository's root
        self._process = _sp.Popen(command, stdout=_sp.PIPE, text=True, cwd=root)
        assert self._process.stdout is not None
        line = self._process.stdout.readline()  # "listening on http://HOST:PORT/v1"
        if not line.startswith("listening on "):
            self.stop()
            raise RuntimeError(f"MockChatServer subprocess did not start: {line!r}")
        self.port = int(line.strip().rsplit(":", 1)[1].split("/", 1)[0])

    def _run_thread(self) -> None:
        try:
            asyncio.run(self.serve())
        except BaseException as error:  # noqa: BLE001 - reported by start()
            self._error = error
            self._ready.set()

    async def serve(self, on_ready: Callable[[], None] | None = None) -> None:
        """Serve until `stop()` (in the thread) or until cancelled (standalone)."""
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._handle, self.host, self.port, backlog=4096)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        if on_ready is not None:
            on_ready()
        try:
            await self._stop.wait()
        finally:
            server.close()
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)

    # --- HTTP ------------------------------------------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                request_line, *header_lines = head.decode("latin-1").split("\r\n")
                method, path, _ = (request_line.split(" ") + ["", ""])[:3]
                length, keep_alive = 0, True
                for line in header_lines:
                    name, _, value = line.partition(":")
                    name = name.strip().lower()
                    if name == "content-length":
                        length = int(value.strip() or 0)
                    elif name == "connection" and value.strip().lower() == "close":
                        keep_alive = False
                body = await reader.readexactly(length) if length else b""
                if method == "POST":
                    self._last_head = head
                keep_alive = await self._respond(method, path.split("?", 1)[0], body, writer) and keep_alive
                if not keep_alive:
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        except asyncio.CancelledError:
            pass
        finally:
            self._connections.discard(task)
            writer.close()

    async def _respond(self, method: str, path: str, body: bytes, writer: asyncio.StreamWriter) -> bool:
        """Write one response; False when the connection must close."""
        if method == "POST" and path.endswith("/chat/completions"):
            return await self._chat(body, writer)
        if method == "GET" and path.endswith("/models"):
            model = {"id": "mock", "object": "model", "owned_by": "mock"}
            self._write(writer, 200, {"object": "list", "data": [model]})
        elif method == "GET" and path.endswith(("/health", "/stats")):
            self._write(writer, 200, self.stats() if path.endswith("/stats") else {"status": "ok"})
        else:
            self._write(writer, 404, {"error": {"message": f"no route {method} {path}", "type": "not_found"}})
        return True

    async def _chat(self, body: bytes, writer: asyncio.StreamWriter) -> bool:
        index = self.requests
        self.requests += 1
        try:
            request = json.loads(body)
            messages = request["messages"]
        except (ValueError, KeyError, TypeError) as error:
            self._write(writer, 400, {"error": {"message": f"bad request body: {error}", "type": "invalid_request"}})
            return True
        fault = self._fault(index, request)
        if fault is not None:
            self.faults_served[fault] += 1
            return await self._inject(fault, writer)
        text = self.answer(messages)
        model = request.get("model", "mock")
        n = int(request.get("n") or 1)
        prompt_tokens = sum(len(message_text(m)) for m in messages) // 4 + 1
        completion_tokens = len(text) // 4 + 1
        if request.get("stream"):
            self._write_stream(writer, model, text, prompt_tokens, completion_tokens)
            return True
        self._write(writer, 200, {
            "id": f"chatcmpl-mock-{index}", "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": "stop",
                         "logprobs": None} for i in range(n)],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens * n,
                      "total_tokens": prompt_tokens + completion_tokens * n},
        })  # fmt: skip
        return True

    def _fault(self, index: int, request: dict[str, Any]) -> str | None:
        if callable(self.faults):
            fault = self.faults(index, request)
            if fault is not None:
                return fault
        elif self.faults and index < len(self.faults) and self.faults[index]:
            return self.faults[index]
        for name, rate in self.fault_rates.items():
            if self._rng.random() < rate:
                return name
        return None

    async def _inject(self, fault: str, writer: asyncio.StreamWriter) -> bool:
        if fault == "500":
            self._write(writer, 500, {"error": {"message": "injected server error", "type": "server_error"}})
            return True
        if fault == "429":
            error = {"error": {"message": "injected rate limit", "type": "rate_limit"}}
            self._write(writer, 429, error, extra_headers=f"Retry-After: {self.retry_after:g}\r\n")
            return True
        if fault == "malformed":
            body = b'{"id": "chatcmpl-mock", "object": "chat.completion", "choices": [{"index": 0, "mess'
            writer.write(self._head(200, len(body)) + body)
            return True
        if fault == "context_length":
            message = (
                "This model's maximum context length is 2048 tokens. However, you requested 2301 tokens "
                "(2173 in the messages, 128 in the completion). Please reduce the length of the messages."
            )
            details = {"message": message, "type": "invalid_request_error", "param": "messages"}
            self._write(writer, 400, {"error": {**details, "code": "context_length_exceeded"}})
            return True
        if fault == "hang":
            await asyncio.sleep(self.hang_s)
            return False
        if fault == "close":
            transport = writer.transport
            transport.abort()  # a reset, not a polite close
            return False
        raise ValueError(f"MockChatServer: unknown fault {fault!r}; use {sorted(FAULTS)}")

    @staticmethod
    def _head(status: int, length: int, content_type: str = "application/json", extra_headers: str = "") -> bytes:
        return (
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {length}\r\n{extra_headers}Connection: keep-alive\r\n\r\n"
        ).encode("latin-1")

    def _write(self, writer: asyncio.StreamWriter, status: int, payload: Any, extra_headers: str = "") -> None:
        body = json.dumps(payload, separators=(",", ":")).encode()
        writer.write(self._head(status, len(body), extra_headers=extra_headers) + body)

    def _write_stream(self, writer: asyncio.StreamWriter, model: str, text: str, prompt: int, completion: int) -> None:
        base = {"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": int(time.time()), "model": model}
        chunks = [
            {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": text}, "finish_reason": None}]},
            {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
             "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}},
        ]  # fmt: skip
        body = "".join(f"data: {json.dumps(chunk)}\n\n" for chunk in chunks).encode() + b"data: [DONE]\n\n"
        writer.write(self._head(200, len(body), content_type="text/event-stream") + body)


# --- standalone ------------------------------------------------------------------------------------
def _parse_rate(text: str) -> tuple[str, float]:
    name, _, rate = text.partition("=")
    if name not in FAULTS or not rate:
        raise argparse.ArgumentTypeError(f"expected FAULT=PROBABILITY with FAULT in {sorted(FAULTS)}, got {text!r}")
    return name, float(rate)


def main(argv: list[str] | None = None) -> None:
    """`python -m tools.testing.mock_server --port 8000 --answer reverse_text [--fault-rate 500=0.1]`."""
    parser = argparse.ArgumentParser(prog="python -m tools.testing.mock_server", description=main.__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0: any free port (printed on start)")
    parser.add_argument("--answer", default="reverse_text", choices=sorted(ANSWERS))
    parser.add_argument("--faults", default="", help="schedule by request index, e.g. '500,,429' (empty: answer)")
    parser.add_argument("--fault-rate", type=_parse_rate, action="append", default=[], help="FAULT=P, repeatable")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--retry-after", type=float, default=0.0, help="Retry-After seconds on 429s")
    parser.add_argument("--hang-s", type=float, default=3600.0, help="how long a 'hang' fault holds the request")
    args = parser.parse_args(argv)
    schedule = [fault or None for fault in args.faults.split(",")] if args.faults else None
    server = MockChatServer(
        args.answer, faults=schedule, fault_rates=dict(args.fault_rate), seed=args.seed,
        retry_after=args.retry_after, hang_s=args.hang_s, host=args.host, port=args.port,
    )  # fmt: skip
    try:
        asyncio.run(server.serve(on_ready=lambda: print(f"listening on {server.base_url}", flush=True)))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()

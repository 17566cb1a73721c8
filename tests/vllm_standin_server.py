"""
Stand-in for vLLM's OpenAI-compatible server (`vllm serve` / `trl vllm-serve`, dev mode on), and TRL's real
`VLLMClient` with only its NCCL weight transfer replaced: see `vllm_standin.py`.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlparse

import torch
from trl.generation.vllm_client import VLLMClient

from haystack_rl.backends import GenerationRequest
from haystack_rl.engine import Engine


def sampling_engine(model_dir: str) -> Engine:
    return Engine.load(model_dir, device="cpu", tokenizer=_tokenizer(model_dir))


def _tokenizer(model_dir: str) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_dir)


def load_named_weights(model: Any, weights: Any) -> int:
    """Copy (name, tensor) pairs into `model`'s parameters of the same names; returns how many."""
    params = dict(model.named_parameters())
    count = 0
    with torch.no_grad():
        for name, tensor in weights:
            params[name].copy_(tensor.to(params[name].device))
            count += 1
    return count


class StandInVLLMServer:
    """A loopback vLLM OpenAI server (`vllm serve MODEL`, dev mode) answering from `model_dir`'s weights."""

    def __init__(self, model_dir: str, served_name: str | None = None, max_model_len: int = 2048) -> None:
        self.engine = sampling_engine(model_dir)
        self.tokenizer = _tokenizer(model_dir)
        self.served_name = served_name or model_dir
        self.max_model_len = max_model_len
        self.requests: list[dict[str, Any]] = []  # every /v1/completions body
        self.calls: list[str] = []  # every path hit, in order
        self.weight_updates: list[dict[str, Any]] = []
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The server root (TRL's `vllm_server_base_url`); the OpenAI API is under `/v1`."""
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    def __enter__(self) -> StandInVLLMServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._http.shutdown()
        self._http.server_close()

    def receive_weights(self, named_params: Any) -> int:
        """The NCCL broadcast's receiving end: the workers load each tensor."""
        return load_named_weights(self.engine.model, named_params)

    def completions(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """`POST /v1/completions` for token-id prompts (vLLM's `OpenAIServingCompletion`)."""
        if body.get("model") not in (None, self.served_name):
            return 404, _error(f"The model `{body.get('model')}` does not exist.", "NotFoundError", 404)
        prompts = body.get("prompt")
        if isinstance(prompts, list) and prompts and isinstance(prompts[0], int):
            prompts = [prompts]
        if not (isinstance(prompts, list) and all(isinstance(p, list) for p in prompts)):
            return 400, _error("this stand-in takes token-id prompts only", "BadRequestError", 400)
        max_tokens = int(body.get("max_tokens") or 16)
        for prompt in prompts:
            if len(prompt) + max_tokens > self.max_model_len:
                return 400, _error(
                    f"This model's maximum context length is {self.max_model_len} tokens. However, you requested "
                    f"{len(prompt) + max_tokens} tokens ({len(prompt)} in the messages, {max_tokens} in the "
                    "completion). Please reduce the length of the messages or completion.",
                    "BadRequestError", 400)  # fmt: skip
        seed = body.get("seed")
        temperature = 1.0 if body.get("temperature") is None else float(body["temperature"])
        top_p = 1.0 if body.get("top_p") is None else float(body["top_p"])
        stop_ids = set(body.get("stop_token_ids") or []) | set(self.engine.stop_ids)
        n = int(body.get("n") or 1)
        choices = []
        for prompt in prompts:
            for _ in range(n):
                request = GenerationRequest(list(prompt), max_tokens, temperature, top_p, seed)
                (completion,) = self.engine.generate([request])
                ids = cut_at_stop(completion.completion_ids, stop_ids)
                choices.append(self._choice(len(choices), prompt, ids, completion.logprobs[: len(ids)], stop_ids,
                                            body))  # fmt: skip
        return 200, {
            "id": f"cmpl-{len(self.requests)}", "object": "text_completion", "created": int(time.time()),
            "model": self.served_name, "choices": choices,
            "usage": {"prompt_tokens": sum(map(len, prompts)), "completion_tokens": sum(len(c["token_ids"] or [])
                                                                                        for c in choices)},
        }  # fmt: skip

    def _choice(self, index: int, prompt: list[int], ids: list[int], logprobs: list[float], stop_ids: set[int],
                body: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
        as_ids = bool(body.get("return_tokens_as_token_ids"))
        tokens = [f"token_id:{i}" if as_ids else self.engine_text([i]) for i in ids]
        stopped = bool(ids) and ids[-1] in stop_ids
        return {
            "index": index,
            "text": self.engine_text(ids[:-1] if stopped else ids),
            "logprobs": None if body.get("logprobs") is None else {
                "text_offset": [0] * len(ids), "token_logprobs": logprobs, "tokens": tokens,
                "top_logprobs": [{token: logprob} for token, logprob in zip(tokens, logprobs)],
            },
            "finish_reason": "stop" if stopped else "length",
            "stop_reason": None,
            "token_ids": ids if body.get("return_token_ids") else None,
            "prompt_token_ids": prompt if body.get("return_token_ids") else None,
        }  # fmt: skip

    def engine_text(self, ids: list[int]) -> str:
        return str(self.tokenizer.decode(ids, skip_special_tokens=True))

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, payload: Any) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                path = urlparse(self.path).path.rstrip("/")
                server.calls.append(path)
                if path == "/health":
                    self._send(200, {})
                elif path == "/v1/models":
                    self._send(200, {"object": "list", "data": [{"id": server.served_name, "object": "model",
                                                                 "max_model_len": server.max_model_len}]})  # fmt: skip
                elif path == "/server_info":
                    self._send(200, {"vllm_config": {"model_config": {"logprobs_mode": "processed_logprobs",
                                                                      "max_model_len": server.max_model_len},
                                                     "weight_transfer_config": {"backend": "nccl"}}})  # fmt: skip
                elif path == "/get_world_size":
                    self._send(200, {"world_size": 1})
                else:
                    self._send(404, _error(f"no route {path}", "NotFound", 404))

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                path = urlparse(self.path).path.rstrip("/")
                server.calls.append(path)
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if path == "/v1/completions":
                    server.requests.append(body)
                    self._send(*server.completions(body))
                elif path == "/update_weights":
                    server.weight_updates.append(body["update_info"])
                    self._send(200, {})
                elif path in ("/reset_prefix_cache", "/start_weight_update", "/finish_weight_update",
                              "/init_weight_transfer_engine"):  # fmt: skip
                    self._send(200, {})
                else:
                    self._send(404, _error(f"no route {path}", "NotFound", 404))

        return Handler


def _error(message: str, kind: str, code: int) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def cut_at_stop(ids: list[int], stop_ids: set[int]) -> list[int]:
    for index, token in enumerate(ids):
        if token in stop_ids:
            return ids[: index + 1]
    return ids


class StandInVLLMClient(VLLMClient):
    """TRL's `VLLMClient` with the NCCL weight-transfer parts replaced by a direct hand-over to the server."""

    server: StandInVLLMServer  # set by `StandInVLLMGeneration`

    def init_communicator(self, device: torch.device | str | int = 0) -> None:
        """Like TRL's: check the server's weight-transfer engine, then join (here: no NCCL group)."""
        if self.get_server_info()["weight_transfer_config"] is None:
            raise RuntimeError("the stand-in server has no weight-transfer engine")
        self._post(f"{self.base_url}/init_weight_transfer_engine", json={"init_info": {"world_size": 2}})
        self.communicator = "stand-in"

    def update_named_params(self, metadata: list[tuple[str, str, list[int]]], named_params: Any) -> None:
        """Like TRL's: announce the tensors (`/update_weights`), then stream them (here: straight to the server)."""
        names, dtypes, shapes = (list(column) for column in zip(*metadata))
        self._start_weight_update()
        self._post(f"{self.base_url}/update_weights",
                   json={"update_info": {"names": names, "dtype_names": dtypes, "shapes": shapes}})  # fmt: skip
        received = self.server.receive_weights(named_params)
        assert received == len(names), f"announced {len(names)} tensors, streamed {received}"
        self._finish_weight_update()

"""Evaluate through a real OpenAI-compatible server: `transformers serve` with the tiny model, on 127.0.0.1."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

READY_TIMEOUT_S = 90


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(process, url, log):
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"transformers serve exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"transformers serve not ready after {READY_TIMEOUT_S} s: {log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from haystack_rl.models import ensure_tiny_model

    model_dir = ensure_tiny_model()
    port = free_port()
    serve = Path(sys.executable).parent / "transformers"
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with open(log, "wb") as handle:
        process = subprocess.Popen(
            [str(serve), "serve", str(model_dir), "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"],
            stdout=handle, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
        )  # fmt: skip
    try:
        wait_ready(process, f"http://127.0.0.1:{port}/health", log)
        yield model_dir, f"http://127.0.0.1:{port}/v1"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.mark.parametrize("env_name", ["reverse_text", "tic_tac_toe", "calculator"])
def test_eval_through_openai_compatible_server(server, tmp_path, env_name):
    model_dir, base_url = server
    out = tmp_path / "served"
    script = Path(sys.executable).parent / "haystack-rl"
    result = subprocess.run(
        [str(script), "eval", env_name, "--model", str(model_dir), "--base-url", base_url,
         "-n", "2", "-r", "2", "--max-tokens", "24", "-o", str(out)],
        capture_output=True, text=True, timeout=180, env={**os.environ, "COLUMNS": "120"},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(records) == 4 and {(r["example_id"], r["rollout_index"]) for r in records} == {
        (f"eval-{i}", j) for i in range(2) for j in range(2)
    }
    assert all(r["error"] is None and r["reward"] is not None for r in records), [r["error"] for r in records]
    assert all(any(m["role"] == "assistant" for m in r["messages"]) for r in records)
    summary = json.loads((out / "metadata.json").read_text())["summary"]
    assert summary["errors"] == 0 and summary["n"] == 4
    assert summary["tokens"]["rollouts_with_tokens"] == 4  # from the server's usage figures
    run = json.loads((out / "run.json").read_text())
    assert run["base_url"] == base_url and run["api_key_env"] is None
    assert "no-key" not in (out / "run.json").read_text() + (out / "metadata.json").read_text()

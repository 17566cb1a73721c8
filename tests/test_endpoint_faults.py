"""`haystack-rl eval` against a faulty OpenAI-compatible server: retries, then a recorded per-rollout error."""

import json
import time

import pytest
from typer.testing import CliRunner

from haystack_rl.cli import app
from haystack_rl.rollout_io import read_rollouts
from haystack_rl_envs.reverse_text import ReverseTextEnv
from tools.testing import MockChatServer

N = 4
EXAMPLES = ReverseTextEnv().examples("eval", N)


def last_user(body):
    return next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")


def text_of(content):
    return content if isinstance(content, str) else "".join(part.get("text", "") for part in content)


def evaluate(server, out, *extra, n=N):
    args = ["eval", "reverse_text", "--model", "mock", "--base-url", server.base_url, "-n", n, "-o", out, *extra]
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result, result.output + (result.stderr if result.stderr_bytes is not None else "")


def test_transient_faults_are_retried_and_lose_nothing(tmp_path):
    times = []

    def plan(index, body):
        times.append(time.monotonic())
        schedule = [None, "500", None, "429", None, "close", None, "hang", None, "malformed"]
        return schedule[index] if index < len(schedule) else None

    with MockChatServer("reverse_text", faults=plan, retry_after=1.5, hang_s=30) as server:
        result, output = evaluate(server, tmp_path / "out", "-c", 1, "--max-retries", 2, "--timeout", 1, n=6)
        stats = server.stats()
    # the malformed body is not retried (the server answered): one rollout records it, the others recover
    assert result.exit_code == 0, output
    assert stats["faults"] == {"500": 1, "429": 1, "close": 1, "hang": 1, "malformed": 1}
    assert stats["requests"] == 6 + 4
    rollouts = sorted(read_rollouts(tmp_path / "out" / "results.jsonl"), key=lambda r: r.example_id)
    errors = [r.error for r in rollouts if r.error]
    assert len(rollouts) == 6 and len(errors) == 1 and "JSONDecodeError" in errors[0], errors
    assert all(r.reward == 1.0 for r in rollouts if not r.error)
    # backoff between attempts; the 429's Retry-After (1.5 s) is honoured
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert gaps[1] >= 0.3 and gaps[3] >= 1.4 and gaps[7] >= 1.0, gaps  # 500, 429, hang (the --timeout)
    summary = json.loads((tmp_path / "out" / "metadata.json").read_text())["summary"]
    assert summary["errors"] == 1 and summary["n"] == 6
    # the failed request is not the model's answer: unscored, not a 0 in the mean
    assert [r.reward for r in rollouts if r.error] == [None]
    assert summary["n_unscored"] == 1 and summary["reward_mean"] == 1.0
    assert "1 of 6 rollouts failed (1 policy: JSONDecodeError)" in " ".join(output.split()), output
    assert "--fail-on-error" in output


@pytest.mark.parametrize(("fault", "attempts"), [("500", 2), ("429", 2), ("close", 2), ("hang", 2), ("malformed", 1)])
def test_persistent_fault_is_a_recorded_error_and_the_eval_finishes(tmp_path, fault, attempts):
    target = EXAMPLES[1]["prompt"]
    hits = []

    def plan(index, body):
        if text_of(last_user(body)) == target:
            hits.append(time.monotonic())
            return fault
        return None

    with MockChatServer("reverse_text", faults=plan, hang_s=30) as server:
        result, output = evaluate(server, tmp_path / "out", "-c", 4, "--max-retries", 1, "--timeout", 0.5)
    assert result.exit_code == 0, output  # errors alone do not fail the run
    assert len(hits) == attempts, hits  # retried once (max-retries 1) where retrying makes sense
    rollouts = {r.example_id: r for r in read_rollouts(tmp_path / "out" / "results.jsonl")}
    assert len(rollouts) == N
    failed = rollouts.pop(EXAMPLES[1]["id"])
    assert failed.error and failed.error.startswith("policy:") and failed.stop_reason == "error"
    assert all(r.error is None and r.reward == 1.0 for r in rollouts.values())
    summary = json.loads((tmp_path / "out" / "metadata.json").read_text())["summary"]
    assert summary["errors"] == 1 and summary["error_examples"] == [failed.error]
    assert "errors" in output and "1 of 4 rollouts failed" in " ".join(output.split())


def test_fail_on_error_exits_non_zero_only_when_a_rollout_failed(tmp_path):
    with MockChatServer("reverse_text", faults=lambda index, body: "500") as server:
        result, output = evaluate(server, tmp_path / "bad", "--max-retries", 0, "--fail-on-error")
    assert result.exit_code == 1, output
    assert f"{N} of {N} rollouts failed ({N} policy: InternalServerError)" in " ".join(output.split()), output
    summary = json.loads((tmp_path / "bad" / "metadata.json").read_text())["summary"]
    assert summary["errors"] == N  # the summary is still written
    with MockChatServer("reverse_text") as server:
        result, output = evaluate(server, tmp_path / "good", "--fail-on-error")
    assert result.exit_code == 0, output
    config = json.loads((tmp_path / "good" / "run.json").read_text())
    assert config["max_retries"] == 2 and config["timeout"] == 60.0  # the defaults, recorded


def test_standalone_server_answers_and_injects_faults():
    """`python -m tools.testing.mock_server` in a subprocess, as benchmarks use it."""
    import openai

    with MockChatServer("tic_tac_toe", subprocess=True, faults=["429", None, "malformed"], retry_after=0.1) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="none", max_retries=1)
        board = "You move first.\n\nX|2|3\n-+-+-\n4|O|6\n-+-+-\n7|8|9\n\nYour move (X)."
        reply = client.chat.completions.create(model="m", messages=[{"role": "user", "content": board}])
        assert reply.choices[0].message.content in {f"<move>{c}</move>" for c in (2, 3, 4, 6, 7, 8, 9)}
        with pytest.raises(json.JSONDecodeError):
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": board}])
        assert server.stats() == {"requests": 3, "faults": {"429": 1, "malformed": 1}}


def test_a_server_refusing_an_overlong_conversation_ends_the_episode_scored(tmp_path):
    """A 400 "maximum context length" on a later turn ends the game there (stop_reason context_length)."""

    def later_turns(index, body):
        return "context_length" if len(body["messages"]) > 2 else None

    def evaluate_tic_tac_toe(server, out):
        args = ["eval", "tic_tac_toe", "--model", "mock", "-n", 3, "--max-retries", 0, "--base-url", server.base_url]
        return CliRunner().invoke(app, [str(a) for a in [*args, "-o", out]])

    with MockChatServer("tic_tac_toe", faults=later_turns) as server:
        result = evaluate_tic_tac_toe(server, tmp_path / "late")
    assert result.exit_code == 0, result.output
    rollouts = list(read_rollouts(tmp_path / "late" / "results.jsonl"))
    assert len(rollouts) == 3
    assert all(r.error is None and r.stop_reason == "context_length" and r.reward is not None for r in rollouts)
    assert all(sum(m.is_from("assistant") for m in r.messages) == 1 for r in rollouts)

    with MockChatServer("tic_tac_toe", faults=lambda index, body: "context_length") as server:
        evaluate_tic_tac_toe(server, tmp_path / "first")
    rollouts = list(read_rollouts(tmp_path / "first" / "results.jsonl"))
    # when not even the first prompt fits, that is a setup problem: an error, not a score
    assert len(rollouts) == 3
    assert all(r.stop_reason == "error" and "maximum context length" in (r.error or "") for r in rollouts)


def test_resume_replays_the_groups_a_dead_endpoint_failed(tmp_path):
    """An outage's failed rollouts are not results: `--resume` plays their groups again and keeps the rest."""
    with MockChatServer("reverse_text", faults=lambda index, body: "500" if index in (1, 2) else None) as server:
        first, output = evaluate(server, tmp_path / "out", "-c", 1, "--max-retries", 0, n=4)
        failed = [r.example_id for r in read_rollouts(tmp_path / "out" / "results.jsonl") if r.error]
        assert first.exit_code == 0 and len(failed) == 2, output
        requests = server.stats()["requests"]
        resumed, output = evaluate(server, tmp_path / "out", "-c", 1, "--max-retries", 0, "--resume", n=4)
        assert resumed.exit_code == 0, output
        assert server.stats()["requests"] == requests + 2  # only the failed groups are played again
    rollouts = read_rollouts(tmp_path / "out" / "results.jsonl")
    assert sorted(r.example_id for r in rollouts) == sorted(e["id"] for e in EXAMPLES)
    assert all(r.error is None and r.reward == 1.0 for r in rollouts)

import json
import math

import pytest
from rich.console import Console

from haystack_rl import Rollout
from haystack_rl.cli.summary_table import print_summary
from haystack_rl.results import ResultsWriter
from haystack_rl.summary import pass_at_k, summarize


def make(example, index, reward, **kwargs):
    return Rollout(str(example), index, seed=7, environment="toy", reward=reward, **kwargs)


def test_pass_at_k_matches_the_combinatorial_definition():
    assert pass_at_k(4, 0, 1) == 0.0
    assert pass_at_k(4, 4, 1) == 1.0
    assert pass_at_k(4, 1, 1) == pytest.approx(0.25)
    assert pass_at_k(4, 1, 2) == pytest.approx(0.5)  # 1 - C(3,2)/C(4,2) = 1 - 3/6
    assert pass_at_k(4, 2, 2) == pytest.approx(1 - 1 / 6)
    assert pass_at_k(4, 1, 4) == 1.0
    assert pass_at_k(5, 2, 3) == pytest.approx(1 - math.comb(3, 3) / math.comb(5, 3))
    with pytest.raises(ValueError):
        pass_at_k(2, 3, 1)
    with pytest.raises(ValueError):
        pass_at_k(2, 1, 3)


def test_summary_math_with_unscored_rollouts_and_pass_at_k():
    rollouts = [
        make("a", 0, 1.0, rewards={"f": 1.0}, metrics={"m": 2.0}),
        make("a", 1, 0.5, rewards={"f": 0.5}, metrics={"m": 4.0}),
        make("a", 2, None, reward_errors={"f": "ZeroDivisionError: x"}, metrics={"m": 6.0}),
        make("a", 3, 0.0, rewards={"f": 0.0}, error="policy: ConnectionError: down", stop_reason="error"),
        make("b", 0, 1.0 - 1e-12, rewards={"f": 1.0}),  # counts as a pass (tolerance)
        make("b", 1, 0.999, rewards={"f": 0.999}),  # does not
        make("b", 2, 1.0, rewards={"f": 1.0}),
        make("b", 3, 0.2, rewards={"f": 0.2}, error="policy: ConnectionError: down", stop_reason="error"),
    ]
    s = summarize(rollouts, wall_time_s=2.0)
    scored = [1.0, 0.5, 0.0, 1.0 - 1e-12, 0.999, 1.0, 0.2]
    assert s["n"] == 8 and s["n_examples"] == 2 and s["n_scored"] == 7 and s["n_unscored"] == 1
    assert s["reward_mean"] == pytest.approx(sum(scored) / 7)
    mean = sum(scored) / 7
    assert s["reward_std"] == pytest.approx(math.sqrt(sum((x - mean) ** 2 for x in scored) / 7))
    assert s["rewards"]["f"] == pytest.approx(sum(scored) / 7)  # the failed call is not a silent 0
    assert s["metrics"] == {"m": pytest.approx(4.0)}
    # group a: 1 pass of 4; group b: 2 passes of 4
    assert s["pass_at_k"]["pass@1"] == pytest.approx((0.25 + 0.5) / 2)
    assert s["pass_at_k"]["pass@2"] == pytest.approx((0.5 + (1 - 1 / 6)) / 2)
    assert s["pass_at_k"]["pass@4"] == pytest.approx(1.0)
    assert set(s["pass_at_k"]) == {"pass@1", "pass@2", "pass@4"}
    assert s["errors"] == 2 and s["error_examples"] == ["policy: ConnectionError: down"]
    assert s["reward_errors"] == {"f": 1}
    assert s["stop_reasons"] == {"error": 2, "unknown": 6}
    assert s["tokens"]["completion_total"] is None
    assert s["rollouts_per_s"] == pytest.approx(4.0)
    json.dumps(s)  # JSON-friendly


def test_pass_at_k_stops_at_the_smallest_group():
    rollouts = [make("a", i, 1.0) for i in range(3)] + [make("b", i, 0.0) for i in range(5)]
    assert summarize(rollouts)["pass_at_k"] == {"pass@1": 0.5, "pass@2": 0.5}


def test_empty_and_all_unscored():
    assert summarize([])["reward_mean"] is None
    s = summarize([make("a", 0, None), make("a", 1, None)])
    assert s["reward_mean"] is None and s["n_unscored"] == 2 and s["pass_at_k"]["pass@1"] == 0.0


def test_tokens_and_breakdowns():
    from haystack_rl import Turn

    rollouts = [
        make(
            "a",
            0,
            1.0,
            metrics={"win": 1.0},
            info={"opponent": "random", "model_starts": True},
            turns=[Turn([1, 2], [3, 4, 5])],
        ),
        make(
            "a",
            1,
            0.0,
            metrics={"win": 0.0},
            info={"opponent": "random", "model_starts": False},
            turns=[Turn([1, 2], [3])],
        ),
        make("b", 0, 0.5, metrics={"win": 0.0}, info={"opponent": "minimax", "model_starts": True}),
    ]
    s = summarize(rollouts, breakdowns=("model_starts", "opponent"))
    assert s["tokens"] == {"rollouts_with_tokens": 2, "completion_total": 4, "completion_mean": 2.0}
    starts = s["breakdowns"]["model_starts"]
    assert starts["True"] == {"n": 2, "reward_mean": 0.75, "metrics": {"win": 0.5}}
    assert starts["False"] == {"n": 1, "reward_mean": 0.0, "metrics": {"win": 0.0}}
    assert s["breakdowns"]["opponent"]["minimax"]["reward_mean"] == 0.5
    console = Console(record=True, width=120)
    print_summary(s, console)
    text = console.export_text()
    assert "by opponent" in text and "minimax" in text and "pass@1" in text


def test_results_writer_writes_metadata(tmp_path):
    writer = ResultsWriter(output_dir=str(tmp_path / "out"), breakdowns=["side"])
    rollouts = [make("a", 0, 1.0, info={"side": "x"}), make("a", 1, 0.0, info={"side": "o"})]
    summary = writer.run(rollouts, run_info={"wall_time_s": 1.0, "config": {"model": "m"}, "command": "cmd"})["summary"]
    metadata = json.loads((tmp_path / "out" / "metadata.json").read_text())
    assert metadata["summary"] == json.loads(json.dumps(summary))
    assert metadata["command"] == "cmd" and metadata["run"] == {"config": {"model": "m"}}
    assert {"haystack-ai", "haystack-rl", "transformers", "trl", "torch"} <= set(metadata["versions"])
    assert set(summary["breakdowns"]["side"]) == {"x", "o"}
    assert ResultsWriter.from_dict(writer.to_dict()).to_dict() == writer.to_dict()


def test_results_writer_finds_the_environment_breakdowns(tmp_path):
    from haystack_rl import SingleTurnEnv

    class Sided(SingleTurnEnv):
        name = "sided_test_env"
        summary_breakdowns = ("side",)

    rollout = Rollout("a", 0, 1, environment="sided_test_env", reward=1.0, info={"side": "x"})
    summary = ResultsWriter(str(tmp_path)).run([rollout])["summary"]
    assert summary["breakdowns"] == {"side": {"x": {"n": 1, "reward_mean": 1.0, "metrics": {}}}}


def test_tokens_from_server_usage_when_no_token_ids():
    from haystack.dataclasses import ChatMessage

    reply = ChatMessage.from_assistant("x", meta={"usage": {"completion_tokens": 7, "prompt_tokens": 3}})
    rollouts = [make("a", 0, 0.0, messages=[ChatMessage.from_user("q"), reply]), make("a", 1, 0.0)]
    assert summarize(rollouts)["tokens"] == {"rollouts_with_tokens": 1, "completion_total": 7, "completion_mean": 7.0}

"""Training a tool-using agent: GRPO through rollout_func on ToolEnv, tool results out of the loss, deploy, run."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from helpers import assert_tool_results_masked, force_tool_call_on_first_turns
from typer.testing import CliRunner

from haystack_rl import ToolEnv, load_environment
from haystack_rl.agents import deploy_model, find_agent, read_agent_yaml
from haystack_rl.cli import app
from haystack_rl.training import ConfigError, TrainConfig, Trainer
from haystack_rl.training.callbacks import read_records

pytestmark = pytest.mark.timeout(300)

CALCULATOR_AGENT = Path(__file__).parent.parent / "pipelines" / "calculator_agent.yml"


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    from haystack_rl.models.tiny import ensure_tiny_model

    return str(ensure_tiny_model(tmp_path_factory.mktemp("models") / "tiny"))


@pytest.fixture
def tasks(tmp_path: Path) -> Path:
    env = load_environment("calculator", num_train_examples=0, num_eval_examples=4)
    path = tmp_path / "tasks.jsonl"
    path.write_text("".join(json.dumps({"prompt": e["prompt"], "answer": e["answer"]}) + "\n"
                            for e in env.examples("eval")))  # fmt: skip
    return path


def agent_config(tmp_path: Path, model: str, tasks: Path, **grpo: Any) -> dict[str, Any]:
    return {
        "model": model,
        "agent": str(CALCULATOR_AGENT),
        "dataset": str(tasks),
        "reward": "numeric_match",
        "output_dir": str(tmp_path / "run"),
        "save_steps": 50,
        "sft": {"enabled": False},
        "grpo": {"steps": 2, "batch": 4, "num_generations": 2, "max_new_tokens": 8, "lr": 1e-3, **grpo},
        "eval": {"num_examples": 2, "max_new_tokens": 8},
    }


def test_tool_results_carry_no_gradient(tmp_path: Path, tiny_dir: str, tasks: Path) -> None:
    from haystack_rl.training.grpo import build_grpo_trainer

    config = TrainConfig.from_dict(agent_config(tmp_path, tiny_dir, tasks))
    env = config.build_environment()
    assert isinstance(env, ToolEnv) and env.tools[0].name == "calculator"
    trainer = build_grpo_trainer(config, env, tiny_dir, tmp_path / "grpo")
    force_tool_call_on_first_turns(trainer.rollout_func.generator)
    rows = [trainer.train_dataset[0]] * 2 + [trainer.train_dataset[1]] * 2
    batch = trainer._generate_and_score_completions(rows)
    rollouts = trainer.rollout_func.last_rollouts
    assert all(r.info["tool_calls"] >= 1 and r.messages[3].tool_call_result.result == "42" for r in rollouts)
    loss_mask = batch["completion_mask"] * batch["tool_mask"]  # what TRL's loss multiplies per-token terms by
    for row, rollout in enumerate(rollouts):
        ids, env_mask, _ = rollout.completion_tokens()
        assert batch["completion_ids"][row, : len(ids)].tolist() == ids
        assert loss_mask[row, : len(ids)].tolist() == env_mask  # tool-result tokens: 0, no gradient
        assert_tool_results_masked(trainer.rollout_func.generator, rollout)
        assert 0 in env_mask and env_mask[0] == 1  # the model's call is trained on, the tool's answer is not
    metrics = trainer.rollout_func.pop_metrics()
    assert metrics["tools/no_tool_share"] == 0.0 and metrics["tools/calls_per_rollout"] >= 1.0
    assert metrics["tools/error_rate"] == 0.0 and metrics["episodes/success"] == 0.0  # 42 is no task's answer
    assert trainer.rollout_func.pop_metrics() == {}  # popped: the next log line counts only new episodes


def test_the_loss_pass_runs_each_shared_prompt_once_with_the_same_logprobs(
    tmp_path: Path, tiny_dir: str, tasks: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    from haystack_rl.training import advantages
    from haystack_rl.training.grpo import build_grpo_trainer

    config = TrainConfig.from_dict(agent_config(tmp_path, tiny_dir, tasks))
    assert config.grpo.share_prompt  # the default
    trainer = build_grpo_trainer(config, config.build_environment(), tiny_dir, tmp_path / "grpo")
    force_tool_call_on_first_turns(trainer.rollout_func.generator, answer="42")
    rows = [trainer.train_dataset[0]] * 2 + [trainer.train_dataset[1]] * 2
    batch = trainer._generate_and_score_completions(rows)
    ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], dim=1)
    mask = torch.cat([batch["prompt_mask"], batch["completion_mask"]], dim=1)
    keep = batch["completion_ids"].size(1)
    prompt_passes: list[int] = []
    shared_pass = advantages.shared_prompt_logps
    monkeypatch.setattr(advantages, "shared_prompt_logps",
                        lambda *a, **k: prompt_passes.append(1) or shared_pass(*a, **k))  # fmt: skip
    shared, shared_entropy, _ = trainer._get_per_token_logps_and_entropies(trainer.model, ids, mask, keep,
                                                                           compute_entropy=True)  # fmt: skip
    trainer.share_prompt = False
    plain, plain_entropy, _ = trainer._get_per_token_logps_and_entropies(trainer.model, ids, mask, keep,
                                                                         compute_entropy=True)  # fmt: skip
    assert prompt_passes == [1]  # the shared pass ran once, and only while share_prompt was on
    # float rounding over ~930 positions: up to ~2e-4 on log-probs as large as 16
    assert torch.allclose(shared, plain, atol=1e-3) and torch.allclose(shared_entropy, plain_entropy, atol=1e-3)


@pytest.mark.parametrize(("baseline", "negative_scale"), [("group", 1.0), ("batch", 1.0), ("batch", 0.25)])
def test_advantage_options(tmp_path: Path, tiny_dir: str, baseline: str, negative_scale: float) -> None:
    from haystack_rl.training.grpo import build_grpo_trainer

    tasks = tmp_path / "two.jsonl"  # every episode answers 42: the first task always succeeds, the second never
    tasks.write_text("".join(json.dumps({"prompt": f"What is {question}?", "answer": answer}) + "\n"
                             for question, answer in [("6 times 7", "42"), ("3 plus 4", "7")]))  # fmt: skip
    options = {"advantage_baseline": baseline, "negative_advantage_scale": negative_scale}
    config = TrainConfig.from_dict(agent_config(tmp_path, tiny_dir, tasks, **options))
    trainer = build_grpo_trainer(config, config.build_environment(), tiny_dir, tmp_path / "grpo")
    force_tool_call_on_first_turns(trainer.rollout_func.generator, answer="42")
    rows = [trainer.train_dataset[0]] * 2 + [trainer.train_dataset[1]] * 2
    advantages = trainer._generate_and_score_completions(rows)["advantages"].tolist()
    assert [r.reward for r in trainer.rollout_func.last_rollouts] == [1.0, 1.0, 0.0, 0.0]
    if baseline == "group":  # GRPO: a group whose rollouts all scored the same carries no gradient
        assert advantages == [0.0, 0.0, 0.0, 0.0]
    else:  # the batch's mean: the failures are pushed down (by the scale's share), the successes up
        assert advantages[0] == advantages[1] > 0 > advantages[2] == advantages[3]
        assert math.isclose(advantages[2], -negative_scale * advantages[0], rel_tol=1e-4)


def test_a_grpo_step_raises_rewarded_tool_rollouts_and_lowers_the_others(tmp_path: Path, tiny_dir: str) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    from haystack_rl.training.grpo import build_grpo_trainer

    tasks = tmp_path / "one.jsonl"  # one group of 4 episodes: call, tool result, then answers 42, 41, 42, 41
    tasks.write_text(json.dumps({"prompt": "What is 6 times 7?", "answer": "42"}) + "\n")
    sgd = {"optim": "sgd", "lr_scheduler_type": "constant", "max_grad_norm": 1e9}
    grpo = {"steps": 1, "num_generations": 4, "lr": 0.01, "extra": sgd}
    config = TrainConfig.from_dict(agent_config(tmp_path, tiny_dir, tasks, **grpo))
    trainer = build_grpo_trainer(config, config.build_environment(), tiny_dir, tmp_path / "grpo")
    force_tool_call_on_first_turns(trainer.rollout_func.generator, answer=["42", "41"])
    trainer.train()
    rollouts = trainer.rollout_func.last_rollouts
    assert sorted(r.reward for r in rollouts) == [0.0, 0.0, 1.0, 1.0]

    def logprob(model: Any, rollout: Any) -> float:  # of the tokens the model wrote, over all its turns
        ids, mask, _ = rollout.completion_tokens()
        tokens = torch.tensor([rollout.prompt_ids + ids])
        with torch.no_grad():
            logits = model(tokens).logits[0, len(rollout.prompt_ids) - 1 : -1].float()
        per_token = torch.log_softmax(logits, -1).gather(1, torch.tensor(ids)[:, None])[:, 0]
        return float((per_token * torch.tensor(mask)).sum())

    before = AutoModelForCausalLM.from_pretrained(tiny_dir).eval()
    after = trainer.model.eval()
    change = {r.reward: logprob(after, r) - logprob(before, r) for r in rollouts}  # equal rollouts, equal change
    assert change[1.0] > 0.01 and change[0.0] < -0.01


def test_train_an_agent_from_its_yaml_then_deploy_and_run_it(tmp_path: Path, tiny_dir: str, tasks: Path) -> None:
    result = Trainer(agent_config(tmp_path, tiny_dir, tasks)).run()
    records = read_records(tmp_path / "run" / "metrics.jsonl")
    steps = [r for r in records if r["stage"] == "grpo" and "reward" in r]
    assert len(steps) == 2
    for record in steps:  # per-step task success and tool use
        assert {"episodes/success", "tools/calls_per_rollout", "tools/no_tool_share", "rewards/correct/mean"} <= set(
            record
        )
        assert 0.0 <= record["tools/no_tool_share"] <= 1.0 and not math.isnan(record["episodes/success"])
    after = result["metrics"]["eval_after"]
    assert after["rollouts"] == 2 and {"success", "no_tool_share", "tool_calls_per_rollout"} <= set(after)

    deployed, differences = deploy_model(CALCULATOR_AGENT, result["model_dir"], tmp_path / "deployed_agent.yml")
    generator = find_agent(read_agent_yaml(deployed))["init_parameters"]["chat_generator"]["init_parameters"]
    assert generator["model"] == result["model_dir"]
    # the shipped agent samples (temperature 1.0) where training evaluated greedily: the only difference
    assert [line.split(":")[0] for line in differences] == ["temperature"], differences
    run = CliRunner().invoke(app, ["run", str(deployed), "--message", "Mia has 3 boxes of 4 pens. How many pens?"])
    assert run.exit_code == 0, run.output
    assert "assistant" in run.output and "Mia has 3 boxes" in run.output


def test_a_config_names_metrics_that_are_reported_not_rewarded(tmp_path: Path, tasks: Path) -> None:
    config = TrainConfig.from_dict({"agent": str(CALCULATOR_AGENT), "dataset": str(tasks), "reward": "numeric_match",
                                    "metric": ["exact_match", "token_f1"]})  # fmt: skip
    rubric = config.build_environment().rubric
    assert rubric.reward_names == ["correct"]  # tool_use_rubric's answer reward: numeric_match here
    assert {"exact_match", "token_f1", "tool_call_validity"} <= set(rubric.metric_names)
    with pytest.raises(ConfigError, match="unknown reward 'nope'"):
        TrainConfig.from_dict(
            {"agent": str(CALCULATOR_AGENT), "dataset": str(tasks), "metric": "nope"}
        ).build_environment()


def test_agent_config_errors(tmp_path: Path, tasks: Path) -> None:
    with pytest.raises(ConfigError, match="agent: training needs `dataset`"):
        TrainConfig.from_dict({"agent": str(CALCULATOR_AGENT)})
    with pytest.raises(ConfigError, match="a dataset file goes with `agent"):
        TrainConfig.from_dict({"env": "calculator", "dataset": str(tasks)})
    config = TrainConfig.from_dict({"agent": str(CALCULATOR_AGENT), "dataset": str(tmp_path / "missing.jsonl")})
    with pytest.raises(ConfigError, match="missing.jsonl: dataset file not found"):
        config.build_environment()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_train_your_agent_example_runs(tmp_path: Path) -> None:
    import subprocess
    import sys

    script = Path(__file__).parent.parent / "examples" / "train_your_agent.py"
    command = [sys.executable, str(script), "--sft-steps", "2", "--grpo-steps", "1", "--output", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=580, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for line in ("before training: success", "after SFT:", "after GRPO:", "user: What does item"):
        assert line in done.stdout
    assert (tmp_path / "final" / "config.json").exists()

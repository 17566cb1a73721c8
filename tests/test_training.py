"""Training: config, rubric rewards for TRL, SFT demonstrations, GRPO runs (tiny model), LoRA, resume, CLI."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from haystack.dataclasses import ChatMessage
from typer.testing import CliRunner

from haystack_rl import MultiTurnEnv, Rollout, Rubric, SingleTurnEnv, load_environment
from haystack_rl.cli import app
from haystack_rl.rubrics import RewardFunction
from haystack_rl.training import ConfigError, TrainConfig, Trainer
from haystack_rl.training.callbacks import read_records
from haystack_rl.training.grpo import run_grpo
from haystack_rl.training.rewards import SCORES_FIELD, example_row, rollout_scores, scored_reward_funcs
from haystack_rl.training.sft import demonstrations

pytestmark = pytest.mark.timeout(180)

SMALL_ENV = {"num_train_examples": 16, "num_eval_examples": 2, "min_chars": 5, "max_chars": 8}


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The project's tiny model, built into a temporary directory."""
    from haystack_rl.models.tiny import ensure_tiny_model

    return str(ensure_tiny_model(tmp_path_factory.mktemp("models") / "tiny"))


def small_config(tmp_path: Path, model: str, **sections: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "model": model,
        "env": "reverse_text",
        "env_args": SMALL_ENV,
        "output_dir": str(tmp_path / "run"),
        "save_steps": 1,
        "sft": {"enabled": False, "steps": 2, "batch": 4},
        "grpo": {"steps": 2, "batch": 4, "num_generations": 2, "max_new_tokens": 8, "lr": 1e-3},
        "eval": {"num_examples": 2, "max_new_tokens": 8},
    }
    for name, values in sections.items():
        config[name] = {**config.get(name, {}), **values} if isinstance(values, dict) else values
    if config["sft"]["enabled"]:  # generation must fit what SFT demonstrates (an 8-char passage: 40 byte tokens)
        config["grpo"].setdefault("max_new_tokens", 40)
        config["grpo"]["max_new_tokens"] = max(config["grpo"]["max_new_tokens"], 40)
        config["eval"]["max_new_tokens"] = max(config["eval"]["max_new_tokens"], 40)
    return config


def weights_of(model_dir: str) -> dict[str, torch.Tensor]:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# --- config ------------------------------------------------------------------------------------
def test_config_yaml_overrides_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "c.yml"
    path.write_text("env: reverse_text\ngrpo:\n  steps: 5\n  lr: 1.0e-4\nlora:\n  enabled: true\n")
    config = TrainConfig.from_yaml(path, overrides=["grpo.steps=7", "lora.target_modules=[q_proj, v_proj]", "seed=3"])
    assert config.grpo.steps == 7 and config.grpo.lr == 1e-4 and config.seed == 3
    assert config.lora.enabled and config.lora.target_modules == ["q_proj", "v_proj"]
    assert TrainConfig.from_dict(config.to_dict()) == config
    errors = [
        ("unknown key 'grpo.stepz'; valid: advantage_baseline, batch,", {"grpo": {"stepz": 1}}, []),
        ("grpo.steps: input should be a valid integer, unable to parse string as an integer (got 'many')", {},
         ["grpo.steps=many"]),
        ("grpo.batch (6) must be a multiple of grpo.num_generations (4)", {"grpo": {"batch": 6, "num_generations": 4}},
         []),
        ("--set 'grpo.steps': expected KEY[.SUB...]=VALUE", {}, ["grpo.steps"]),
        ("grpo.resample_flat_groups: input should be greater than or equal to 0 (got -1)",
         {"grpo": {"resample_flat_groups": -1}}, []),
        ("grpo.advantage_baseline: input should be 'group' or 'batch' (got 'global')",
         {"grpo": {"advantage_baseline": "global"}}, []),
        ("grpo.negative_advantage_scale: input should be less than or equal to 1 (got 1.5)",
         {"grpo": {"negative_advantage_scale": 1.5}}, []),
        ("grpo.vllm_mode: input should be 'server' or 'colocate' (got 'remote')",
         {"grpo": {"vllm_mode": "remote"}}, []),
    ]  # fmt: skip
    for says, data, overrides in errors:
        with pytest.raises(ConfigError) as caught:
            TrainConfig.from_dict(data, overrides=overrides)
        assert says in str(caught.value) and "\n" not in str(caught.value), str(caught.value)


# --- rewards -----------------------------------------------------------------------------------
def test_reward_funcs_read_the_rubric_scores_of_each_rollout(tiny_dir: str) -> None:
    from haystack_rl.training.multiturn import EnvRolloutFunc

    env = load_environment("reverse_text", num_train_examples=4, num_eval_examples=1)
    funcs, weights = scored_reward_funcs(env)
    assert [f.__name__ for f in funcs] == ["lcs_reward", "format_reward"]
    assert weights == pytest.approx([1 / 1.2, 0.2 / 1.2]) == env.rubric.weights  # normalized like Rubric's total
    func = EnvRolloutFunc(env, tiny_dir, num_generations=2, seed=0, max_new_tokens=8)
    rows = [example_row(env, example, 0) for example in env.examples("train")[:2]]
    prompts = [rows[0]["prompt"]] * 2 + [rows[1]["prompt"]] * 2
    out = func(prompts, trainer_stub(tiny_dir))
    values = {
        f.__name__: f(prompts=prompts, completions=[None] * 4, **{SCORES_FIELD: out[SCORES_FIELD]}) for f in funcs
    }
    for index, rollout in enumerate(func.last_rollouts):
        assert rollout.rewards == {name: values[name][index] for name in values}
        assert rollout.reward == pytest.approx(sum(w * values[f.__name__][index] for f, w in zip(funcs, weights)))


def stop_reason_reward(rollout: Rollout) -> float:
    """Reads what only the episode knows: its `info` (set at reset) and its stop reason."""
    return float(rollout.info["asked"] == rollout.example["prompt"] and rollout.stop_reason == "done")


class _Recorded(SingleTurnEnv):
    def setup_state(self, state: Any) -> None:
        state.info["asked"] = state.example["prompt"]


def test_a_single_turn_reward_reading_info_is_the_same_in_eval_and_in_a_grpo_step(tiny_dir: str) -> None:
    from haystack_rl.training.evaluation import evaluate_model
    from haystack_rl.training.multiturn import EnvRolloutFunc

    env = _Recorded(
        dataset=[{"prompt": f"say {i}"} for i in range(2)], rubric=Rubric.from_functions([stop_reason_reward])
    )
    assert evaluate_model(env, tiny_dir, max_new_tokens=4, temperature=1.0, seed=0)["reward"] == 1.0
    func = EnvRolloutFunc(env, tiny_dir, num_generations=2, seed=0, max_new_tokens=4)
    rows = [example_row(env, example, 0) for example in env.examples("train")]
    func([rows[0]["prompt"]] * 2 + [rows[1]["prompt"]] * 2, trainer_stub(tiny_dir))
    assert [r.reward for r in func.last_rollouts] == [1.0] * 4
    assert {r.stop_reason for r in func.last_rollouts} == {"done"}


def test_a_failing_reward_function_is_none_for_trl_and_counted() -> None:
    def broken(rollout: Rollout) -> float:
        raise RuntimeError("boom")

    env = SingleTurnEnv(dataset=[{"id": "a", "prompt": "x"}], rubric=Rubric([RewardFunction(broken)]))
    rollout = env.score_group([Rollout("a", 0, 0)])[0]
    (func,), weights = scored_reward_funcs(env)
    assert weights == [1.0] and "boom" in rollout.reward_errors["broken"] and rollout.reward is None
    assert func(prompts=["p"], completions=[None], **{SCORES_FIELD: [rollout_scores(rollout)]}) == [None]


# --- SFT demonstrations ------------------------------------------------------------------------
def test_demonstrations_from_baselines() -> None:
    env = load_environment("reverse_text", num_train_examples=5, num_eval_examples=1)
    rows = demonstrations(env, "expert")
    assert len(rows) == 5
    example = env.examples("train")[0]
    assert rows[0]["prompt"][-1] == {"role": "user", "content": example["prompt"]}
    assert rows[0]["completion"] == [
        {"role": "assistant", "content": f"<reversed_text>{example['answer']}</reversed_text>"}
    ]
    weak = demonstrations(env, "copy", num_examples=2)
    assert weak[0]["completion"][0]["content"] == f"<reversed_text>{example['prompt']}</reversed_text>"
    with pytest.raises(ValueError, match="baselines"):
        demonstrations(env, "noisy")


def test_unique_demonstrations_keep_one_of_each() -> None:
    # a deterministic expert against a near-minimax opponent plays some games more than once
    env = load_environment("tic_tac_toe", num_train_examples=60, max_random_move_prob=0.2)
    games = demonstrations(env, "expert", per_turn=False)
    once = demonstrations(env, "expert", per_turn=False, unique=True)
    keys = [json.dumps(row, sort_keys=True) for row in games]
    assert len(games) == 60 and 0 < len(once) < len(games)
    assert [json.dumps(row, sort_keys=True) for row in once] == list(dict.fromkeys(keys))  # first of each, in order
    moves = demonstrations(env, "expert", unique=True)  # per-turn rows: each game prefix once
    assert len({json.dumps(row, sort_keys=True) for row in moves}) == len(moves) < 3 * len(once)


# --- training runs ------------------------------------------------------------------------------
def test_trainer_sft_grpo_end_to_end(tmp_path: Path, tiny_dir: str) -> None:
    config = small_config(tmp_path, tiny_dir, sft={"enabled": True})
    trainer = Trainer(config)
    assert Trainer.from_dict(trainer.to_dict()).config == trainer.config
    result = trainer.run()
    out = Path(config["output_dir"])
    assert result["model_dir"] == str(out / "final")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert AutoModelForCausalLM.from_pretrained(result["model_dir"]).config.use_cache  # generation keeps its KV cache
    tokenizer = AutoTokenizer.from_pretrained(result["model_dir"])
    assert tokenizer.chat_template and "<|im_start|>" in tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    records = read_records(out / "metrics.jsonl")
    grpo = [r for r in records if r["stage"] == "grpo" and "reward" in r]
    assert [r["step"] for r in grpo] == [1, 2]
    for key in ("reward", "reward_std", "rewards/lcs_reward/mean", "rewards/format_reward/mean",
                "completions/mean_length", "step_time_s"):  # fmt: skip
        assert key in grpo[0], key
    assert any(r["stage"] == "sft" and "loss" in r for r in records)
    assert (out / "learning_curve.png").stat().st_size > 1000
    metrics = result["metrics"]
    for key in ("eval_before", "eval_sft", "eval_after"):
        assert metrics[key]["rollouts"] == 2 and metrics[key]["reward"] is not None
    assert metrics["sft_model"] == str(out / "sft" / "final")  # the warm start, for evaluating it again
    assert json.loads((out / "summary.json").read_text())["eval_after"]["rollouts"] == 2


def length_reward(rollout: Rollout) -> float:
    """Varies across any group of sampled completions, so GRPO has a signal from step 1."""
    return len(rollout.completion) / 10.0


def test_grpo_changes_the_parameters(tmp_path: Path, tiny_dir: str) -> None:
    env = SingleTurnEnv(dataset=[{"id": str(i), "prompt": f"say {i}"} for i in range(8)],
                        rubric=Rubric([RewardFunction(length_reward)]))  # fmt: skip
    config = TrainConfig.from_dict(small_config(tmp_path, tiny_dir, grpo={"temperature": 1.5}))
    final, metrics = run_grpo(config, env, tiny_dir, tmp_path / "run" / "grpo", tmp_path / "run" / "final")
    before, after = weights_of(tiny_dir), weights_of(final)
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed, "GRPO did not change any parameter"
    records = read_records(tmp_path / "run" / "metrics.jsonl")
    assert any(r.get("reward_std", 0) > 0 for r in records)


def test_lora_run_saves_a_merged_plain_model(tmp_path: Path, tiny_dir: str) -> None:
    config = small_config(tmp_path, tiny_dir, lora={"enabled": True, "r": 4, "alpha": 8}, grpo={"steps": 1})
    result = Trainer(config, evaluate_before_after=False).run()
    final = Path(result["model_dir"])
    assert not (final / "adapter_config.json").exists()
    weights = weights_of(str(final))
    assert not any("lora" in key for key in weights)
    assert set(weights) == set(weights_of(tiny_dir))


def test_resume_continues_from_the_last_checkpoint(tmp_path: Path, tiny_dir: str) -> None:
    config = small_config(tmp_path, tiny_dir, grpo={"steps": 2})
    Trainer(config, evaluate_before_after=False).run()
    grpo_dir = Path(config["output_dir"]) / "grpo"
    assert (grpo_dir / "checkpoint-2").is_dir()
    config["grpo"]["steps"] = 3
    result = Trainer(config, evaluate_before_after=False).run(resume=True)
    assert str(result["metrics"]["grpo_resumed_from"]).endswith("checkpoint-2")
    steps = [r["step"] for r in read_records(Path(config["output_dir"]) / "metrics.jsonl") if "reward" in r]
    assert steps == [1, 2, 3]  # the log continues; nothing retrained


def test_cli_train_command(tmp_path: Path, tiny_dir: str) -> None:
    path = tmp_path / "train.yml"
    path.write_text(json.dumps(small_config(tmp_path, tiny_dir)))  # JSON is YAML
    result = CliRunner().invoke(app, ["train", str(path), "--set", "grpo.steps=1", "--set", "save_steps=5"])
    assert result.exit_code == 0, result.output
    assert "evaluation" in result.output and "lcs_reward" in result.output
    assert (tmp_path / "run" / "final" / "config.json").exists()
    bad = CliRunner().invoke(app, ["train", str(path), "--set", "grpo.nope=1"])
    assert bad.exit_code == 2 and "grpo.nope" in bad.output


# --- multi-turn (rollout_func) -----------------------------------------------------------------
def trainer_stub(model_dir: str) -> Any:
    """What a rollout function uses of `GRPOTrainer`: its `model` and `processing_class`."""
    from types import SimpleNamespace

    from transformers import AutoModelForCausalLM, AutoTokenizer

    return SimpleNamespace(model=AutoModelForCausalLM.from_pretrained(model_dir),
                           processing_class=AutoTokenizer.from_pretrained(model_dir))  # fmt: skip


def test_rollout_func_masks_environment_tokens(tiny_dir: str) -> None:
    from haystack_rl.training.multiturn import EnvRolloutFunc

    env = load_environment("tic_tac_toe", num_train_examples=4, num_eval_examples=1, invalid_move_ends_game=False)
    func = EnvRolloutFunc(env, tiny_dir, num_generations=2, seed=0, max_new_tokens=6, max_total_tokens=18)
    rows = [example_row(env, example, 0) for example in env.examples("train")[:2]]
    prompts = [rows[0]["prompt"]] * 2 + [rows[1]["prompt"]] * 2  # TRL repeats each prompt num_generations times
    out = func(prompts, trainer_stub(tiny_dir))
    assert {len(out[k]) for k in ("prompt_ids", "completion_ids", "logprobs", "env_mask", SCORES_FIELD)} == {4}
    rollouts = func.last_rollouts
    assert [r.example_id for r in rollouts] == [rows[0]["example_id"]] * 2 + [rows[1]["example_id"]] * 2
    assert len({r.seed for r in rollouts[:2]}) == 1  # a group shares its episode seed (same opponent)
    multi = [i for i, r in enumerate(rollouts) if len(r.turns) > 1]
    assert multi, "expected a multi-turn episode (invalid moves are asked again)"
    i = multi[0]
    ids, mask = out["completion_ids"][i], out["env_mask"][i]
    assert len(ids) == len(mask) == len(out["logprobs"][i]) and 0 in mask and 1 in mask
    model_tokens = [t for t, m in zip(ids, mask) if m == 1]
    assert model_tokens == [t for turn in rollouts[i].turns for t in turn.completion_ids]
    assert out["prompt_ids"][i] == rollouts[i].turns[0].prompt_ids
    funcs, weights = scored_reward_funcs(env)
    values = {
        f.__name__: f(prompts=prompts, completions=[None] * 4, **{SCORES_FIELD: out[SCORES_FIELD]}) for f in funcs
    }
    assert values["loss"][i] == rollouts[i].metrics["loss"] and weights == [f.weight for f in env.rubric.functions]


class _OneReply(MultiTurnEnv):
    """One model reply; the reward is 0 on `flat` examples and the rollout's index on the others."""

    name = "one_reply"

    def env_response(self, state: Any, reply: ChatMessage) -> tuple[list[ChatMessage], bool]:
        return [], True


def _index_unless_flat(rollout: Rollout) -> float:
    return 0.0 if rollout.example["kind"] == "flat" else float(rollout.rollout_index)


@pytest.mark.parametrize("resample", [0, 3])
def test_rollout_func_replays_groups_without_reward_spread(tiny_dir: str, resample: int) -> None:
    from haystack_rl.training.multiturn import EnvRolloutFunc

    dataset = [{"prompt": "Say a.", "kind": "flat"}] + [{"prompt": f"Say {c}.", "kind": "spread"} for c in "bcdefgh"]
    env = _OneReply(dataset=dataset, rubric=Rubric.from_functions([_index_unless_flat]))
    func = EnvRolloutFunc(env, tiny_dir, num_generations=2, seed=0, max_new_tokens=4, resample_flat_groups=resample)
    rows = [example_row(env, example, 0) for example in env.examples("train")[:2]]  # the flat one, then b
    out = func([rows[0]["prompt"]] * 2 + [rows[1]["prompt"]] * 2, trainer_stub(tiny_dir))
    rollouts = func.last_rollouts
    assert len(out["prompt_ids"]) == 4 and [r.reward for r in rollouts[2:]] == [0.0, 1.0]  # b's group kept as is
    metrics = func.pop_metrics()
    if not resample:
        assert [r.example_id for r in rollouts[:2]] == [rows[0]["example_id"]] * 2
        assert [r.reward for r in rollouts[:2]] == [0.0, 0.0] and "groups/resampled" not in metrics
        return
    replacement = rollouts[0].example_id
    assert replacement != rows[0]["example_id"] and rollouts[1].example_id == replacement
    assert rollouts[0].example["kind"] == "spread" and [r.reward for r in rollouts[:2]] == [0.0, 1.0]
    assert out["prompt_ids"][0] == rollouts[0].prompt_ids  # TRL trains on the replacement's own prompt
    assert metrics["groups/resampled"] >= 1 and metrics["groups/flat"] == 0


def test_multi_turn_grpo_and_demonstrations(tmp_path: Path, tiny_dir: str) -> None:
    env_args = {"num_train_examples": 4, "num_eval_examples": 1, "invalid_move_ends_game": True}
    env = load_environment("tic_tac_toe", **env_args)
    rows = demonstrations(env, "random-legal", num_examples=1)  # one prompt/completion row per model move
    assert len(rows) >= 3 and all(len(row["completion"]) == 1 for row in rows)
    assert rows[1]["prompt"][: len(rows[0]["prompt"]) + 1] == rows[0]["prompt"] + rows[0]["completion"]
    whole = demonstrations(env, "random-legal", num_examples=1, per_turn=False)
    assert len(whole) == 1 and "Game over" in whole[0]["messages"][-1]["content"]
    config = small_config(tmp_path, tiny_dir, env="tic_tac_toe",
                          sft={"enabled": True, "quality": "random-legal", "steps": 1, "batch": 2, "unique": True},
                          grpo={"steps": 1, "max_new_tokens": 8, "max_episode_tokens": 16})  # fmt: skip
    config["env_args"] = env_args
    result = Trainer(config).run()
    assert result["metrics"]["sft_examples"] == 2  # whole games, one row each (the template marks assistant turns)
    records = read_records(Path(config["output_dir"]) / "metrics.jsonl")
    grpo = [r for r in records if r["stage"] == "grpo" and "reward" in r]
    assert grpo and "rewards/win/mean" in grpo[0]
    assert result["metrics"]["eval_after"]["rollouts"] == 1
    assert (Path(result["model_dir"]) / "config.json").exists()


def test_env_mask_reaches_the_grpo_loss(tmp_path: Path, tiny_dir: str) -> None:
    from haystack_rl.training.grpo import build_grpo_trainer

    env = load_environment("tic_tac_toe", num_train_examples=2, num_eval_examples=1, invalid_move_ends_game=False)
    config = TrainConfig.from_dict(
        small_config(tmp_path, tiny_dir, grpo={"max_new_tokens": 6, "max_episode_tokens": 18})
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer = build_grpo_trainer(config, env, tiny_dir, tmp_path / "grpo")
    assert not [w for w in caught if "rollout_func" in str(w.message)]  # TRL's notice is ours to heed, not the user's
    rows = [trainer.train_dataset[0]] * 2 + [trainer.train_dataset[1]] * 2
    batch = trainer._generate_and_score_completions(rows)
    rollouts = trainer.rollout_func.last_rollouts
    loss_mask = batch["completion_mask"] * batch["tool_mask"]  # what TRL's loss multiplies per-token terms by
    for row, rollout in enumerate(rollouts):
        ids, env_mask, _ = rollout.completion_tokens()
        assert batch["completion_ids"][row, : len(ids)].tolist() == ids
        assert loss_mask[row, : len(ids)].tolist() == env_mask  # environment tokens: 0, no gradient
    assert any(0 in r.completion_tokens()[1] for r in rollouts)


def test_demonstrated_replies_longer_than_generation_are_refused_before_any_work(tmp_path: Path,
                                                                                tiny_dir: str) -> None:  # fmt: skip
    from transformers import AutoTokenizer

    from haystack_rl.training.preflight import DemonstrationSetupError, check_reply_budget, reply_lengths

    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    guess = [ChatMessage.from_user("Guess?"), ChatMessage.from_assistant("<guess>50</guess>")]
    assert reply_lengths(tokenizer, [guess, guess]) == [18]  # 17 byte tokens and the end-of-turn token
    config = TrainConfig.from_dict({"grpo": {"max_new_tokens": 16}, "eval": {"max_new_tokens": 32}})
    with pytest.raises(DemonstrationSetupError, match=r"1 of 1 distinct .* longer than grpo.max_new_tokens=16 .*"
                                                      r"raise grpo.max_new_tokens to at least 18"):  # fmt: skip
        check_reply_budget([18], config, "guess")
    check_reply_budget([18], TrainConfig.from_dict({"grpo": {"max_new_tokens": 18}}), "guess")
    # a multi-turn environment through the CLI: refused before the first evaluation, nothing trained
    path = tmp_path / "train.yml"
    config_dict = small_config(tmp_path, tiny_dir, env="tic_tac_toe", sft={"enabled": True})
    config_dict["env_args"] = {"num_train_examples": 4}
    config_dict["grpo"]["max_new_tokens"] = config_dict["eval"]["max_new_tokens"] = 4
    path.write_text(json.dumps(config_dict))
    result = CliRunner().invoke(app, ["train", str(path)])
    said = " ".join(result.output.split())
    assert result.exit_code == 2 and "raise eval.max_new_tokens and grpo.max_new_tokens to at least" in said, said
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


def test_time_limit_stops_training(monkeypatch: pytest.MonkeyPatch) -> None:
    from transformers import TrainerControl, TrainerState

    from haystack_rl.training import callbacks

    clock = [100.0]
    monkeypatch.setattr(callbacks.time, "perf_counter", lambda: clock[0])
    callback, state, control = callbacks.TimeLimitCallback(minutes=0.5), TrainerState(), TrainerControl()
    callback.on_train_begin(None, state, control)  # type: ignore[arg-type]
    for step, now in enumerate((110.0, 129.9, 130.0), start=1):
        clock[0], state.global_step = now, step
        callback.on_step_end(None, state, control)  # type: ignore[arg-type]
        assert control.should_training_stop is (now >= 130.0)
    assert callback.stopped_at_step == 3
    with pytest.raises(ValueError, match="positive"):
        callbacks.TimeLimitCallback(minutes=0)
    assert TrainConfig.from_dict({"grpo": {"max_minutes": 30}}).grpo.max_minutes == 30


def test_progress_bar_shows_the_step_just_logged_and_each_stage_its_own_figures() -> None:
    from rich.console import Console
    from transformers import TrainerControl, TrainerState

    from haystack_rl.training.cli import RichProgressCallback, training_progress

    class SFTConfig: ...

    class GRPOConfig: ...

    progress = training_progress(Console(file=None, force_terminal=False, quiet=True))
    callback, control = RichProgressCallback(progress), TrainerControl()
    for args, logs in ((SFTConfig(), {"loss": 1.25}), (GRPOConfig(), {"reward": 0.5})):
        state = TrainerState(max_steps=1)
        callback.on_train_begin(args, state, control)  # type: ignore[arg-type]
        state.global_step = 1
        callback.on_step_end(args, state, control)  # type: ignore[arg-type]
        callback.on_log(args, state, control, logs=logs)  # type: ignore[arg-type]  # HF logs after on_step_end
    sft, grpo = progress.tasks
    assert (sft.description, sft.fields["info"]) == ("SFT", "loss(avg1) 1.250")
    assert (grpo.description, grpo.fields["info"]) == ("GRPO", "reward(avg1) 0.500")


# --- several processes (torchrun, gloo) ---------------------------------------------------------
RANK_LOGGING_LAUNCHER = '''
"""`haystack-rl train` with a callback that logs, per process, its rank, the world size and each step."""
import json
import sys

from transformers import TrainerCallback

from haystack_rl.cli import app
from haystack_rl.training import Trainer


class RankLog(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        stage = "grpo" if type(args).__name__.startswith("GRPO") else "sft"
        with open(f"{sys.argv[1]}/rank{args.process_index}.jsonl", "a") as handle:
            handle.write(json.dumps({"world_size": args.world_size, "stage": stage, "step": state.global_step}) + "\\n")


init = Trainer.__init__
Trainer.__init__ = lambda self, *a, **k: (init(self, *a, **k), self.add_callback(RankLog()))[0]
app(sys.argv[2:])
'''


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_two_processes_train_with_gloo(tmp_path: Path, tiny_dir: str) -> None:
    """`torchrun --nproc_per_node 2 -m haystack_rl.cli train`: both ranks step (DDP), rank 0 alone reports."""
    import os
    import subprocess
    import sys

    config = small_config(tmp_path, tiny_dir, sft={"enabled": True, "steps": 2, "batch": 2})
    path = tmp_path / "train.yml"
    path.write_text(json.dumps(config))
    launcher = tmp_path / "launch.py"
    launcher.write_text(RANK_LOGGING_LAUNCHER)
    ranks = tmp_path / "ranks"
    ranks.mkdir()
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(launcher), str(ranks), "train", str(path)]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=280, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for rank in (0, 1):
        records = [json.loads(line) for line in (ranks / f"rank{rank}.jsonl").read_text().splitlines()]
        assert {r["world_size"] for r in records} == {2}
        assert [r["step"] for r in records if r["stage"] == "sft"] == [1, 2]
        assert [r["step"] for r in records if r["stage"] == "grpo"] == [1, 2]
    assert done.stdout.count("evaluation (eval split)") == 1  # rank 0 alone prints the table
    out = Path(config["output_dir"])
    assert [r["step"] for r in read_records(out / "metrics.jsonl") if r["stage"] == "grpo" and "reward" in r] == [1, 2]
    assert (out / "learning_curve.png").exists() and json.loads((out / "summary.json").read_text())["eval_after"]
    weights_of(str(out / "final"))  # a plain model directory that loads

"""
Rollouts on vLLM, against stand-ins of vLLM (see `vllm_standin.py`): multi-turn and tool GRPO steps through TRL's
own vLLM objects (server and colocate mode) give the in-process path's token data, with a weight sync per step;
evaluation over an OpenAI-compatible token server gives exact token data.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
import vllm_standin
from haystack.dataclasses import ChatMessage
from helpers import CALL, assert_tool_results_masked, edit_completions
from transformers import TrainerCallback
from typer.testing import CliRunner

from haystack_rl.backends import GenerationRequest, OpenAITokenBackend, TRLVLLMBackend
from haystack_rl.cli import app
from haystack_rl.generators import TokenChatGenerator
from haystack_rl.rollout_io import read_rollouts
from haystack_rl.training import TrainConfig

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]

ENVS = {
    "tic_tac_toe": {"num_train_examples": 4, "num_eval_examples": 2, "max_turns": 3},
    "calculator": {"num_train_examples": 4, "num_eval_examples": 2, "answer_reward": "numeric_closeness"},
}


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    from haystack_rl.models.tiny import ensure_tiny_model

    return str(ensure_tiny_model(tmp_path_factory.mktemp("models") / "tiny"))


def grpo_config(tmp_path: Path, model: str, env: str, **grpo: Any) -> TrainConfig:
    return TrainConfig.from_dict({
        "model": model, "env": env, "env_args": ENVS[env], "output_dir": str(tmp_path / "run"), "save_steps": 50,
        "sft": {"enabled": False},
        "grpo": {"steps": 2, "batch": 4, "num_generations": 2, "max_new_tokens": 8, "lr": 1e-2, **grpo},
        "eval": {"num_examples": 1, "max_new_tokens": 8},
    })  # fmt: skip


def token_data(rollout: Any) -> tuple[Any, ...]:
    ids, mask, logprobs = rollout.completion_tokens()
    return rollout.prompt_ids, ids, mask, logprobs, len(rollout.turns), rollout.reward


def vary_replies(generator: Any, env: str) -> None:
    """
    Script some replies, chosen by each request's seed (so both paths get the same ones), so that rewards differ
    within a group and GRPO's update is not zero; the other replies are the model's. tic_tac_toe: half the first
    moves are `<move>N</move>`. calculator: every first reply is a calculator call (the tiny model makes none),
    then a third of the answers are 42, a third 7, a third the model's.
    """
    from haystack_rl.backends import Completion

    def edit(request: Any, completion: Any) -> Any:
        tokenizer = generator.tokenizer
        first = tokenizer.decode(request.prompt_ids).count("<|im_start|>assistant") == 1
        if env == "calculator":
            text = CALL if first else {0: "<answer>42</answer>", 1: "<answer>7</answer>"}.get(request.seed % 3)
        else:
            text = f"<move>{request.seed % 9 + 1}</move>" if first and request.seed % 2 else None
        if text is None:
            return completion
        ids = tokenizer.encode(text, add_special_tokens=False) + [tokenizer.convert_tokens_to_ids("<|im_end|>")]
        return Completion(ids, [-1.0] * len(ids), "stop")

    edit_completions(generator, edit)


class NudgeWeights(TrainerCallback):
    """Shift the weights after each step (as an update would, even when a step's rewards happen to be flat)."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        import torch

        with torch.no_grad():
            for param in self.model.parameters():
                param.mul_(1.01)


def train_steps(tmp_path: Path, model: str, env: str, **grpo: Any) -> tuple[Any, list[list[tuple[Any, ...]]]]:
    """Two GRPO steps; returns the trainer and each step's rollouts as token data."""
    from haystack_rl.training.grpo import build_grpo_trainer

    config = grpo_config(tmp_path, model, env, **grpo)
    trainer = build_grpo_trainer(config, config.build_environment(), model, tmp_path / "grpo")
    rollout_func = trainer.rollout_func
    vary_replies(rollout_func.generator, env)
    steps: list[list[tuple[Any, ...]]] = []

    def recording(prompts: list[Any], trainer: Any) -> dict[str, list[Any]]:
        output = rollout_func(prompts, trainer)
        steps.append([token_data(r) for r in rollout_func.last_rollouts])
        return output

    trainer.rollout_func = recording
    trainer.add_callback(NudgeWeights(trainer.model))
    trainer.train()
    if env == "calculator":
        for rollout in rollout_func.last_rollouts:
            assert rollout.info["tool_calls"] >= 1
            assert_tool_results_masked(rollout_func.generator, rollout)
    return trainer, steps


@pytest.fixture(scope="module")
def in_process(tiny_dir: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[list[tuple[Any, ...]]]]:
    """Each env's two GRPO steps on the in-process engine (the reference)."""
    return {env: train_steps(tmp_path_factory.mktemp(env), tiny_dir, env)[1] for env in ENVS}


def assert_same_token_data(got: list[list[tuple[Any, ...]]], expected: list[list[tuple[Any, ...]]]) -> None:
    assert len(got) == len(expected) == 2
    for step, (rows, reference) in enumerate(zip(got, expected)):
        for row, (a, b) in enumerate(zip(rows, reference, strict=True)):
            where = f"step {step}, rollout {row}"
            assert a[0] == b[0] and a[1] == b[1], f"{where}: token ids differ"
            assert a[2] == b[2], f"{where}: env mask differs"
            assert a[3] == pytest.approx(b[3], abs=1e-4), f"{where}: logprobs differ"
            assert a[4:] == b[4:], f"{where}: turns or reward differ"
    assert any(turns > 1 for rows in got for *_, turns, _ in rows), "no multi-turn episode was played"


@pytest.mark.parametrize("env", list(ENVS))
@pytest.mark.parametrize("mode", ["server", "colocate"])
def test_grpo_steps_on_vllm_give_the_in_process_token_data(
    env: str, mode: str, tiny_dir: str, tmp_path: Path, in_process: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = vllm_standin.StandInVLLMServer(tiny_dir) if mode == "server" else None
    with server or contextlib.nullcontext():
        vllm_standin.install(monkeypatch, server)
        # TRL corrects vLLM samples by importance sampling, which the in-process path does not do: off, so that
        # both paths make the same update and their second steps can be compared too (scripted replies carry
        # made-up logprobs, which the correction would weigh)
        grpo: dict[str, Any] = {"use_vllm": True, "vllm_mode": mode,
                                "extra": {"vllm_importance_sampling_correction": False}}  # fmt: skip
        if server is not None:
            grpo["vllm_server_base_url"] = server.url
        trainer, steps = train_steps(tmp_path, tiny_dir, env, **grpo)
    assert_same_token_data(steps, in_process[env])
    (generation,) = vllm_standin.StandInVLLMGeneration.instances
    assert trainer.vllm_generation is generation
    # TRL synced the trainer's weights into vLLM before each step's rollouts, and they had changed by step 2
    assert generation.syncs == [True, True] and generation.synced_sums[0] != generation.synced_sums[1]
    assert trainer.state.global_step == 2
    turns = sum(rows[4] for step in steps for rows in step)
    if server is not None:  # every model turn was one /v1/completions request with the sampling settings
        assert len(server.requests) == turns and len(server.weight_updates) == 2
        assert server.calls.count("/reset_prefix_cache") == 2
        body = server.requests[0]
        assert body["logprobs"] == 0 and body["return_token_ids"] and body["max_tokens"] <= 8
        assert body["stop_token_ids"] == [258] and isinstance(body["seed"], int) and body["temperature"] == 1.0
        assert len({r["seed"] for r in server.requests}) > 1
    else:  # every model turn was a prompt of a batched LLM.generate call
        assert sum(generation.llm.generate_calls) == turns and max(generation.llm.generate_calls) > 1
        assert generation.llm.prefix_cache_resets == 2


def test_the_trainer_backend_is_trls_vllm_and_refuses_lockstep_settings(
    tiny_dir: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from haystack_rl.backends import trainer_backend
    from haystack_rl.training.grpo import build_grpo_trainer

    vllm_standin.install(monkeypatch)
    config = grpo_config(tmp_path, tiny_dir, "tic_tac_toe", use_vllm=True, vllm_mode="colocate")
    trainer = build_grpo_trainer(config, config.build_environment(), tiny_dir, tmp_path / "grpo")
    backend = trainer_backend(trainer)
    assert isinstance(backend, TRLVLLMBackend) and backend.mode == "colocate" and backend.stop_ids == {258}
    (completion,) = backend.generate([GenerationRequest([257, 72, 105], 4, seed=1)])
    assert completion == asyncio.run(backend.generate_async(GenerationRequest([257, 72, 105], 4, seed=1)))
    trainer.vllm_generation.enable_sleep_mode = True
    with pytest.raises(ValueError, match="sleep_mode"):
        trainer_backend(trainer)
    trainer.vllm_generation.enable_sleep_mode, trainer.vllm_generation.tensor_parallel_size = False, 2
    with pytest.raises(ValueError, match="tensor_parallel_size=1"):
        trainer_backend(trainer)


# --- evaluation over an OpenAI-compatible token server ----------------------------------------------
USER = [ChatMessage.from_system("Be brief."), ChatMessage.from_user("Say something.")]


def test_token_generator_over_http_matches_the_in_process_one(tiny_dir: str) -> None:
    local = TokenChatGenerator(model=tiny_dir, generation_kwargs={"max_new_tokens": 12})
    local.warm_up()
    with vllm_standin.StandInVLLMServer(tiny_dir, served_name="tiny-served", max_model_len=512) as server:
        remote = TokenChatGenerator(model="tiny-served", tokenizer=tiny_dir, base_url=f"{server.url}/v1",
                                    generation_kwargs={"max_new_tokens": 12})  # fmt: skip
        remote.warm_up()
        assert remote.backend.max_context_length == 512  # from /v1/models
        for seed in range(3):
            a = local.run(USER, generation_kwargs={"seed": seed})["replies"][0]
            b = remote.run(USER, generation_kwargs={"seed": seed})["replies"][0]
            c = asyncio.run(remote.run_async(USER, generation_kwargs={"seed": seed}))["replies"][0]
            assert a.text == b.text == c.text
            for key in ("prompt_ids", "completion_ids", "finish_reason"):
                assert a.meta[key] == b.meta[key] == c.meta[key]
            assert a.meta["logprobs"] == pytest.approx(b.meta["logprobs"], abs=1e-4)
        wrong = TokenChatGenerator(model="other", tokenizer=tiny_dir, base_url=f"{server.url}/v1")
        with pytest.raises(ValueError, match="serves \\['tiny-served'\\], not 'other'"):
            wrong.warm_up()


def test_backend_reads_vllm_completions_and_reports_servers_without_token_ids(tiny_dir: str) -> None:
    with vllm_standin.StandInVLLMServer(tiny_dir, max_model_len=64) as server:
        backend = OpenAITokenBackend(f"{server.url}/v1", tiny_dir, stop_ids=[258], max_retries=0)
        request = GenerationRequest([257, 72, 105, 258, 10, 257], 6, temperature=0.7, top_p=0.9, seed=4)
        (completion,) = backend.generate([request])
        body = server.requests[-1]
        assert body["prompt"] == request.prompt_ids and body["seed"] == 4 and body["top_p"] == 0.9
        assert 1 <= len(completion.completion_ids) == len(completion.logprobs) <= 6
        import openai

        with pytest.raises(openai.BadRequestError, match="maximum context length is 64"):
            backend.generate([GenerationRequest([1] * 60, 8)])
        original = server.completions

        def without_ids(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
            status, payload = original({**body, "return_token_ids": False, "return_tokens_as_token_ids": False})
            return status, payload

        server.completions = without_ids  # type: ignore[method-assign]
        with pytest.raises(RuntimeError, match="returned no token ids"):
            backend.generate([request])


def test_eval_with_tokens_over_http_records_exact_turns(tiny_dir: str, tmp_path: Path) -> None:
    runner = CliRunner()
    common = ["eval", "tic_tac_toe", "--model", tiny_dir, "-n", "2", "-r", "2", "--max-tokens", "8", "--seed", "3",
              "-a", json.dumps({"num_eval_examples": 2, "max_turns": 3})]  # fmt: skip
    local = runner.invoke(app, [*common, "-o", str(tmp_path / "local")])
    assert local.exit_code == 0, local.output
    with vllm_standin.StandInVLLMServer(tiny_dir) as server:
        remote = runner.invoke(app, [*common, "-o", str(tmp_path / "remote"), "--base-url", f"{server.url}/v1",
                                     "--tokens"])  # fmt: skip
        assert remote.exit_code == 0, remote.output
        assert server.requests and all(isinstance(r["prompt"][0], int) for r in server.requests)
    rollouts = list(read_rollouts(tmp_path / "remote" / "results.jsonl"))
    reference = {r.key: r for r in read_rollouts(tmp_path / "local" / "results.jsonl")}
    assert len(rollouts) == 4 and any(len(r.turns) > 1 for r in rollouts)
    for rollout in rollouts:
        ids, mask, logprobs = rollout.completion_tokens()  # raises if a turn's prompt does not extend the last
        assert 0 in mask or len(rollout.turns) == 1
        expected = reference[rollout.key].completion_tokens()
        assert (ids, mask) == expected[:2] and logprobs == pytest.approx(expected[2], abs=1e-4)
    bad = runner.invoke(app, ["eval", "tic_tac_toe", "--model", tiny_dir, "--tokens", "-o", str(tmp_path / "x")])
    assert bad.exit_code != 0 and "--tokens needs --base-url" in bad.output

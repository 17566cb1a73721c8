"""The pipeline is the episode: a RAG pipeline's generator calls are evaluated, recorded and trained in place."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from haystack import Pipeline
from haystack.components.builders import ChatPromptBuilder
from haystack.components.converters import OutputAdapter
from haystack.components.retrievers.in_memory import InMemoryBM25Retriever
from haystack.dataclasses import ChatMessage

from haystack_rl import Rollout, RolloutRunner, Rubric
from haystack_rl.environments.pipeline_env import PipelineEnv
from haystack_rl.generators import FunctionChatGenerator
from haystack_rl_envs.search_qa.env import TRAIN_QUESTIONS, build_document_store


def rag_pipeline() -> Pipeline:
    """rewrite the question into keywords -> BM25 over the search_qa corpus -> answer from the documents."""
    pipeline = Pipeline()
    pipeline.add_component(
        "rewrite_prompt",
        ChatPromptBuilder(
            template=[ChatMessage.from_user("Keywords for: {{ question }}")], required_variables=["question"]
        ),
    )
    pipeline.add_component("rewriter", FunctionChatGenerator(lambda messages, rng: "unused"))
    pipeline.add_component("to_query", OutputAdapter(template="{{ replies[0].text }}", output_type=str))
    pipeline.add_component("retriever", InMemoryBM25Retriever(document_store=build_document_store(), top_k=1))
    pipeline.add_component(
        "answer_prompt",
        ChatPromptBuilder(
            template=[
                ChatMessage.from_user("{% for d in documents %}{{ d.content[:80] }}\n{% endfor %}Q: {{ question }}")
            ],
            required_variables=["question", "documents"],
        ),
    )
    pipeline.add_component("answerer", FunctionChatGenerator(lambda messages, rng: "unused"))
    pipeline.connect("rewrite_prompt.prompt", "rewriter.messages")
    pipeline.connect("rewriter.replies", "to_query.replies")
    pipeline.connect("to_query.output", "retriever.query")
    pipeline.connect("retriever.documents", "answer_prompt.documents")
    pipeline.connect("answer_prompt.prompt", "answerer.messages")
    return pipeline  # fmt: skip


def retrieval_hit(rollout: Rollout) -> float:
    """A component-level reward: did the retriever find the question's document?"""
    documents = rollout.info["outputs"]["retriever"]["documents"]
    return float(any(document["id"] == rollout.example["doc_id"] for document in documents))


TASKS = [{key: question[key] for key in ("id", "prompt", "doc_id", "answer")} for question in TRAIN_QUESTIONS[:4]]


def rag_env() -> PipelineEnv:
    return PipelineEnv(rag_pipeline(), generator=["rewriter", "answerer"], dataset=TASKS,
                       inputs={"rewrite_prompt.question": "prompt", "answer_prompt.question": "prompt"},
                       rubric=Rubric.from_functions([retrieval_hit]))  # fmt: skip


def keyword_policy(messages: list[ChatMessage], rng: Any) -> str:
    """Rewrites with the question itself; answers with the first word of the document."""
    text = messages[-1].text or ""
    return text.removeprefix("Keywords for: ") if text.startswith("Keywords for") else text.split()[0]


def test_each_call_is_recorded_and_a_reward_reads_the_retriever() -> None:
    env = rag_env()
    rollouts = RolloutRunner(env, FunctionChatGenerator(keyword_policy), rollouts_per_example=2).run()["rollouts"]
    assert len(rollouts) == 8 and all(r.error is None and r.stop_reason == "done" for r in rollouts)
    assert all(r.info["generator_calls"] == 2 for r in rollouts)
    assert [m.role.value for m in rollouts[0].messages] == ["user", "assistant", "user", "assistant"]
    assert sum(r.reward for r in rollouts) / len(rollouts) >= 0.75  # BM25 on the question finds most documents
    assert "documents" in rollouts[0].info["outputs"]["retriever"]
    assert json.loads(Rollout.from_json(rollouts[0].to_json()).to_json()) == json.loads(rollouts[0].to_json())


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_grpo_step_trains_both_calls_of_each_episode(tmp_path: Path, tiny_model_path: Path) -> None:
    from transformers import AutoTokenizer

    from haystack_rl.training.config import TrainConfig
    from haystack_rl.training.grpo import build_grpo_trainer
    from haystack_rl.training.rewards import example_row

    env = rag_env()
    config = TrainConfig.from_dict({"model": str(tiny_model_path), "output_dir": str(tmp_path), "save_steps": 5,
                                    "grpo": {"steps": 1, "batch": 4, "num_generations": 2, "max_new_tokens": 8,
                                             "temperature": 1.0, "lr": 1e-3}})  # fmt: skip
    trainer = build_grpo_trainer(config, env, str(tiny_model_path), tmp_path / "grpo")
    rows = [example_row(env, example, 0) for example in env.examples("train")[:2]]
    out = trainer.rollout_func([rows[0]["prompt"]] * 2 + [rows[1]["prompt"]] * 2, trainer)
    rollouts = trainer.rollout_func.last_rollouts
    for index, rollout in enumerate(rollouts):
        sequences = rollout.sequences()
        assert len(sequences) == 2 and [len(t.completion_ids) for t in rollout.turns] == [len(s[1]) for s in sequences]
        mask = out["env_mask"][index]
        (start,) = trainer.rollout_func.segment_starts[tuple(out["prompt_ids"][index] + out["completion_ids"][index])]
        assert mask[:start] == [1] * start and 0 in mask[start:] and sum(mask) == rollout.num_completion_tokens
    # scoring: each call on its own prompt gives back the log-probs the model sampled with, and carries gradient
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_path)
    width = max(len(p) for p in out["prompt_ids"])
    length = max(len(c) for c in out["completion_ids"])
    ids = torch.tensor([[tokenizer.pad_token_id or 0] * (width - len(p)) + p + c + [0] * (length - len(c))
                        for p, c in zip(out["prompt_ids"], out["completion_ids"])])  # fmt: skip
    attention = torch.tensor([[0] * (width - len(p)) + [1] * (len(p) + len(c)) + [0] * (length - len(c))
                              for p, c in zip(out["prompt_ids"], out["completion_ids"])])  # fmt: skip
    logps, _, _ = trainer._get_per_token_logps_and_entropies(trainer.model, ids, attention, length)
    for row, (mask, sampled) in enumerate(zip(out["env_mask"], out["logprobs"])):
        model_tokens = [i for i, bit in enumerate(mask) if bit]
        assert all(math.isclose(float(logps[row, i]), sampled[i], abs_tol=2e-3) for i in model_tokens)
    (start,) = trainer.rollout_func.segment_starts[tuple(out["prompt_ids"][0] + out["completion_ids"][0])]
    second_call = [i for i, bit in enumerate(out["env_mask"][0]) if bit and i > start]
    logps[0, second_call].sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in trainer.model.parameters())
    # and a whole GRPO step runs
    trainer.train()
    assert trainer.state.global_step == 1


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_eval_of_a_pipeline_yaml_and_running_it_give_the_same_outputs(tmp_path: Path) -> None:
    import subprocess
    import sys

    question = TRAIN_QUESTIONS[0]
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(json.dumps({"id": "q0", "question": question["prompt"], "answer": question["answer"],
                                 "doc_id": question["doc_id"]}) + "\n")  # fmt: skip
    pipeline = Path(__file__).resolve().parent.parent / "pipelines" / "rag_search_qa.yml"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "haystack_rl.cli", *args], cwd=tmp_path, capture_output=True,
                              text=True, timeout=240, check=False)  # fmt: skip

    evaluated = cli("eval", "--pipeline", str(pipeline), "--generator", "rewriter", "--generator", "answerer",
                    "--dataset", str(tasks), "--reward", "exact_match", "--metric",
                    "haystack_rl_envs.search_qa.env:retrieval_hit", "-o", "eval")  # fmt: skip
    assert evaluated.returncode == 0, evaluated.stdout + evaluated.stderr
    (rollout,) = [json.loads(line) for line in (tmp_path / "eval" / "results.jsonl").read_text().splitlines()]
    assert rollout["info"]["generator_calls"] == 2
    # the retriever's hit is reported (weight 0), the answer alone is rewarded
    assert set(rollout["rewards"]) == {"exact_match"} and set(rollout["metrics"]) == {"retrieval_hit"}
    assert rollout["reward"] == rollout["rewards"]["exact_match"]
    ran = cli("run", str(pipeline), "--input", f"question={question['prompt']}", "-o", "run.json")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    outputs = json.loads((tmp_path / "run.json").read_text())
    for component in ("rewriter", "retriever", "answerer"):
        assert outputs[component] == rollout["info"]["outputs"][component], component


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_episode_as_a_pipeline_graph_equals_the_runner_s_rollout(tmp_path: Path) -> None:
    import asyncio
    import subprocess
    import sys

    from haystack_rl import load_environment
    from haystack_rl.episode import play_episode
    from haystack_rl.generators import TokenChatGenerator

    loop = Path(__file__).resolve().parent.parent / "pipelines" / "tic_tac_toe_loop.yml"
    ran = subprocess.run([sys.executable, "-m", "haystack_rl.cli", "run", str(loop), "--input", "example_id=eval-1",
                          "--input", "seed=7", "-o", "out.json"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=240, check=False)  # fmt: skip
    assert ran.returncode == 0, ran.stdout + ran.stderr
    (graph,) = [Rollout.from_dict(r) for r in json.loads((tmp_path / "out.json").read_text())["rubric"]["rollouts"]]
    env = load_environment("tic_tac_toe")
    generator = TokenChatGenerator(model="tiny", generation_kwargs={"max_new_tokens": 16, "temperature": 0.0})
    runner = asyncio.run(play_episode(env, generator, env.examples("eval")[1], seed=7))
    env.score_group([runner])
    assert [m.to_dict()["content"] for m in graph.messages] == [m.to_dict()["content"] for m in runner.messages]
    assert graph.turns == runner.turns and graph.turns  # the same token ids and log-probs, turn by turn
    assert graph.reward == runner.reward and graph.stop_reason == runner.stop_reason

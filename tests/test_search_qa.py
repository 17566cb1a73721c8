"""The search_qa environment: corpus and BM25 tool, oracle score, checker, and tiny-model tool rollouts."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from helpers import assert_tool_results_masked

from haystack_rl import RolloutRunner, check_environment, load_environment
from haystack_rl.episode import play_episode
from haystack_rl.generators import FunctionChatGenerator
from haystack_rl_envs.search_qa import SearchQAEnv
from haystack_rl_envs.search_qa.corpus import CORPUS

ROOT = Path(__file__).parent.parent


def test_corpus_is_consistent_and_the_eval_split_is_held_out() -> None:
    ids = [row[0] for row in CORPUS]
    assert len(CORPUS) >= 40 and len(set(ids)) == len(ids)
    texts = {doc_id: text for doc_id, _, text, _ in CORPUS}
    env = SearchQAEnv()
    train, held_out = env.examples("train"), env.examples("eval")
    for example in train + held_out:
        assert example["answer"].lower().removeprefix("the ") in texts[example["doc_id"]].lower()
        assert example["prompt"].endswith("?")
    assert len(train) >= 80 and {e["prompt"] for e in train}.isdisjoint(e["prompt"] for e in held_out)
    answers = {doc_id: {e["answer"] for e in train if e["doc_id"] == doc_id} for doc_id in ids}
    assert sum(len(a) > 1 for a in answers.values()) >= 30  # a document alone does not tell the answer
    assert sum(e["answer"] not in answers[e["doc_id"]] for e in held_out) >= 10  # facts no training question asks
    dataset_file = [json.loads(line) for line in (ROOT / "bench" / "search_qa_heldout.jsonl").read_text().splitlines()]
    assert dataset_file == [{key: e[key] for key in ("id", "prompt", "answer")} for e in held_out]


def test_search_tool_is_a_bm25_pipeline_that_finds_each_questions_document() -> None:
    env = SearchQAEnv(top_k=3)
    tool = env.tools[0]
    assert tool.tool_spec["parameters"]["required"] == ["query"]
    top_hits, examples = 0, env.examples("train") + env.examples("eval")
    for example in examples:
        documents = tool.invoke(query=example["prompt"])["documents"]
        assert 1 <= len(documents) <= 3
        top_hits += documents[0].id == example["doc_id"]
    assert top_hits / len(examples) >= 0.95


def test_oracle_scores_at_least_095_and_no_search_scores_zero() -> None:
    env = load_environment("search_qa")
    scores = {}
    for name, baseline in env.baselines().items():
        rollouts = RolloutRunner(env, FunctionChatGenerator(baseline, name=name)).run()["rollouts"]
        assert all(r.error is None for r in rollouts)
        scores[name] = sum(r.reward or 0.0 for r in rollouts) / len(rollouts)
    assert scores["oracle"] >= 0.95 and scores["no_search"] == 0.0


def test_check_environment_and_round_trip() -> None:
    env = SearchQAEnv(top_k=2, f1_weight=0.5, max_turns=4, tool_error_penalty=0.25)
    check_environment(env)
    restored = SearchQAEnv.from_dict(env.to_dict())
    assert (restored.top_k, restored.f1_weight, restored.max_turns, restored.tool_error_penalty) == (2, 0.5, 4, 0.25)
    weights = {f.name: f.weight for f in restored.rubric.functions}
    assert weights == {"correct": 1.0, "token_f1": 0.5, "tool_call_validity": 0.0, "num_tool_calls": 0.0,
                       "num_tool_errors": -0.25}  # fmt: skip


def test_tiny_model_scripted_search_rollout_keeps_exact_tokens(make_generator: Any, scripted: Any) -> None:
    env = SearchQAEnv()
    example = env.examples("train")[0]
    generator = make_generator(max_new_tokens=64)
    scripted(generator, [
        '<tool_call>{"name": "lookup", "arguments": {"query": "x"}}</tool_call><|im_end|>',
        'Searching.\n<tool_call>{"name": "search", "arguments": {"query": "Brellick lighthouse"}}</tool_call>\n'
        '<tool_call>{"name": "search", "arguments": {"query": "Oda Pell"}}</tool_call><|im_end|>',
        "<answer>1731</answer><|im_end|>",
    ])  # fmt: skip
    rollout = asyncio.run(play_episode(env, generator, example, seed=0))
    env.rubric.score(rollout)
    assert rollout.error is None and rollout.stop_reason == "done" and len(rollout.turns) == 3
    assert rollout.reward == 1.0 and rollout.metrics["num_tool_calls"] == 3.0
    assert rollout.info["tool_errors"]["unknown_tool"] == 1
    assert_tool_results_masked(generator, rollout)


def test_tiny_model_runs_full_rollouts_without_crashing(make_generator: Any) -> None:
    env = SearchQAEnv(max_turns=3)
    generator = make_generator(max_new_tokens=64)
    rollouts = RolloutRunner(env, generator, rollouts_per_example=2, num_examples=1).run()["rollouts"]
    for rollout in rollouts:
        assert rollout.error is None and rollout.stop_reason in ("done", "max_turns", "length")
        assert rollout.reward is not None
        assert_tool_results_masked(generator, rollout)

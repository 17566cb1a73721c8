"""Contracts of the private library APIs we use (haystack_rl/internals.py lists them): an upgrade that breaks one
fails here, by name, rather than somewhere in a training run."""

from __future__ import annotations

import inspect

import pytest
from haystack.dataclasses import ChatMessage, ToolCall

from haystack_rl.internals import TRL_GRPO_OVERRIDES, agent_exit_reason, allowed_modules, run_tools_like_agent


def test_haystack_agent_tool_runner_and_exit_rule() -> None:
    import asyncio

    from haystack.components.agents.state import State
    from haystack.tools import create_tool_from_function

    def double(x: int) -> int:
        """Double x."""
        return 2 * x

    reply = ChatMessage.from_assistant(tool_calls=[ToolCall(tool_name="double", arguments={"x": 4})])
    (result,) = asyncio.run(run_tools_like_agent(reply, [create_tool_from_function(double)], State(schema={})))
    assert result.tool_call_result.result == "8" and not result.tool_call_result.error
    assert agent_exit_reason(ChatMessage.from_assistant("done")) == "text"
    assert agent_exit_reason(ChatMessage.from_assistant("")) is None  # the Agent asks again
    assert agent_exit_reason(ChatMessage.from_assistant("cut", meta={"finish_reason": "length"})) == "length"


def test_haystack_per_call_allowlist() -> None:
    from haystack.core.errors import DeserializationError
    from haystack.core.serialization import import_class_by_name

    with pytest.raises(DeserializationError):
        import_class_by_name("json.JSONDecoder")
    with allowed_modules(["json"]):
        assert import_class_by_name("json.JSONDecoder").__name__ == "JSONDecoder"
    with pytest.raises(DeserializationError):  # only for the block
        import_class_by_name("json.JSONDecoder")


@pytest.mark.parametrize("method", sorted(TRL_GRPO_OVERRIDES))
def test_trl_grpo_methods_we_override_keep_their_parameters(method: str) -> None:
    from trl import GRPOTrainer

    parameters = list(inspect.signature(getattr(GRPOTrainer, method)).parameters)[1:]
    expected = TRL_GRPO_OVERRIDES[method]
    assert parameters[: len(expected)] == list(expected), f"GRPOTrainer.{method}{parameters}"


def test_trl_syncs_vllm_weights_before_a_rollout_func() -> None:
    from trl import GRPOTrainer

    source = inspect.getsource(GRPOTrainer._generate)
    assert "sync_weights()" in source and source.index("sync_weights()") < source.index("self.rollout_func(")
    from trl.generation.vllm_generation import VLLMGeneration

    assert callable(VLLMGeneration.sync_weights)


def test_trl_fused_head_scores_labels_shifted_by_one(tiny_model_path: object) -> None:
    import torch
    from transformers import AutoModelForCausalLM
    from trl.trainer.utils import add_fused_lm_head

    model = AutoModelForCausalLM.from_pretrained(tiny_model_path)
    add_fused_lm_head(model, temperature=1.0)
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    labels = ids.clone()
    labels[:, :2] = -100
    output = model(input_ids=ids, labels=labels, fused_lm_head=True)
    logits = model(input_ids=ids).logits
    expected = torch.log_softmax(logits[0, 1:4], dim=-1).gather(-1, ids[0, 2:5, None]).squeeze(-1)
    assert output.log_probs.shape[1] == ids.shape[1] - 1 and hasattr(output, "entropy")
    assert torch.allclose(output.log_probs[0, 1:4], expected, atol=1e-4)


def test_transformers_cache_api(tiny_model_path: object) -> None:
    from transformers import AutoModelForCausalLM, DynamicCache

    from haystack_rl.engine import kv_cache

    model = AutoModelForCausalLM.from_pretrained(tiny_model_path)
    assert kv_cache.cache_argument(model) in inspect.signature(type(model).forward).parameters
    assert callable(getattr(DynamicCache, "reorder_cache", None))
    assert "max_cache_len" in inspect.signature(__import__("transformers").StaticCache).parameters

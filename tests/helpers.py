"""Assertions shared by several test files."""

from typing import Any


def assert_tool_results_masked(generator: Any, rollout: Any) -> None:
    """The rollout's token view is consistent and every tool result sits in environment tokens (mask 0)."""
    ids, mask, logprobs = rollout.completion_tokens()
    assert len(ids) == len(mask) == len(logprobs) and sum(mask) == rollout.num_completion_tokens
    env_text = generator.tokenizer.decode([i for i, m in zip(ids, mask) if m == 0])
    for message in rollout.messages:
        if message.is_from("tool"):
            assert str(message.tool_call_result.result) in env_text  # tool results are masked out

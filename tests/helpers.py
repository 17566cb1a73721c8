"""Assertions and test doubles shared by several test files."""

from collections.abc import Callable
from typing import Any

CALL = '<tool_call>{"name": "calculator", "arguments": {"expression": "6 * 7"}}</tool_call>'


def assert_tool_results_masked(generator: Any, rollout: Any) -> None:
    """The rollout's token view is consistent and every tool result sits in environment tokens (mask 0)."""
    ids, mask, logprobs = rollout.completion_tokens()
    assert len(ids) == len(mask) == len(logprobs) and sum(mask) == rollout.num_completion_tokens
    env_text = generator.tokenizer.decode([i for i, m in zip(ids, mask) if m == 0])
    for message in rollout.messages:
        if message.is_from("tool"):
            assert str(message.tool_call_result.result) in env_text  # tool results are masked out


class EditedBackend:
    """A generation backend whose completions pass through `edit(request, completion)` (scripts what is "sampled")."""

    def __init__(self, inner: Any, edit: Callable[[Any, Any], Any]) -> None:
        self.inner, self.edit = inner, edit
        self.stop_ids, self.max_context_length = inner.stop_ids, inner.max_context_length

    def generate(self, requests: list[Any]) -> list[Any]:
        return [self.edit(r, c) for r, c in zip(requests, self.inner.generate(requests))]

    async def generate_async(self, request: Any) -> Any:
        return self.edit(request, await self.inner.generate_async(request))


def edit_completions(generator: Any, edit: Callable[[Any, Any], Any]) -> None:
    """Route `generator`'s completions through `edit`: its backend now, and any it is given later (a rollout
    function gives it the trainer's on its first call), whichever backend it is (in-process or vLLM)."""
    attach = generator.use_backend
    generator.use_backend = lambda backend, tokenizer: attach(EditedBackend(backend, edit), tokenizer)
    try:
        backend = generator.backend
    except RuntimeError:  # not warmed up: nothing attached yet
        return
    attach(EditedBackend(backend, edit), generator.tokenizer)


def force_tool_call_on_first_turns(generator: Any, answer: str | list[str] | None = None) -> None:
    """
    Make every first reply of an episode a well-formed calculator call (the untrained tiny model emits none),
    and with `answer` every later reply `<answer>{answer}</answer>` (a list: its answers in turn). The model
    still samples each reply first (same random streams); its tokens are then replaced.
    """
    from itertools import cycle

    from haystack_rl.backends import Completion

    answers = cycle([answer] if isinstance(answer, str) else answer or [None])

    def edit(request: Any, completion: Any) -> Any:
        tokenizer = generator.tokenizer
        first = "<|im_start|>tool" not in tokenizer.decode(request.prompt_ids)
        reply = None if first else next(answers)
        if not first and reply is None:
            return completion
        text = CALL if first else f"<answer>{reply}</answer>"
        ids = tokenizer.encode(text, add_special_tokens=False) + [tokenizer.convert_tokens_to_ids("<|im_end|>")]
        return Completion(ids, [-1.0] * len(ids), "stop")

    edit_completions(generator, edit)

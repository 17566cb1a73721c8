"""The reverse_text environment: data, rubric, baselines and `load_environment`."""

from __future__ import annotations

import difflib
import random
from typing import Any

from haystack.dataclasses import ChatMessage

from haystack_rl import Rollout, Rubric, SingleTurnEnv, TagParser
from haystack_rl.rubrics import RewardFunction

PARSER = TagParser("reversed_text")
SYSTEM_PROMPT = "Reverse the text character by character. Answer inside <reversed_text> </reversed_text> tags."
WORDS = (
    "the of and to in is it you that he was for on are with as his they be at one have this from or had by "
    "hot word but what some we can out other were all there when up use your how said an each she which do "
    "their time if will way about many then them write would like so these her long make thing see him two "
    "has look more day could go come did number sound no most people my over know water than call first who "
    "may down side been now find any new work part take get place made live where after back little only "
    "round man year came show every good me give our under name very through just form sentence great think "
    "say help low line differ turn cause much mean before move right boy old too same tell does set three "
    "want air well also play small end put home read hand port large spell add even land here must big high "
    "such follow act why ask men change went light kind off need house picture try us again animal point "
    "mother world near build self earth father head stand own page should country found answer school grow "
    "study still learn plant cover food sun four between state keep eye never last let thought city tree "
    "cross farm hard start might story saw far sea draw left late run while press close night real life few"
).split()


def make_passage(rng: random.Random, min_chars: int, max_chars: int) -> str:
    """A passage of common words, between `min_chars` and `max_chars` characters long."""
    target = rng.randint(min_chars, max_chars)
    words: list[str] = []
    while len(" ".join(words)) < target:
        words.append(rng.choice(WORDS))
    text = " ".join(words)[:target].rstrip()
    return text if len(text) >= min_chars else text.ljust(min_chars, "x")


def lcs_reward(rollout: Rollout) -> float:
    """SequenceMatcher ratio between the parsed answer and the reversed passage (0 without an answer)."""
    parsed = PARSER.parse(rollout.completion)
    if parsed is None:
        return 0.0
    return difflib.SequenceMatcher(None, parsed, rollout.example["answer"]).ratio()


def format_reward(rollout: Rollout) -> float:
    """1 when the reply is exactly one <reversed_text> block (an optional <think> block before it is fine)."""
    return PARSER.format_reward(rollout)


def oracle_baseline(messages: list[ChatMessage], rng: random.Random) -> str:
    """Answers correctly: the last user message reversed, in tags."""
    return f"<reversed_text>{(messages[-1].text or '')[::-1]}</reversed_text>"


def copy_baseline(messages: list[ChatMessage], rng: random.Random) -> str:
    """Copies the passage unreversed, in tags: well formed, mostly wrong."""
    return f"<reversed_text>{messages[-1].text or ''}</reversed_text>"


class ReverseTextEnv(SingleTurnEnv):
    """
    Reverse a passage of common English words; reward = similarity to the reversed text (weight 1)
    plus strict format (weight `format_weight`), normalized so a perfect answer scores 1.

    Usage example:
    ```python
    from haystack.dataclasses import ChatMessage
    from haystack_rl_envs.reverse_text import ReverseTextEnv

    env = ReverseTextEnv(num_eval_examples=3, min_chars=10, max_chars=30)
    example = env.examples("eval")[0]
    messages, state = env.reset(example, seed=0)
    assert messages[-1].text[::-1] == example["answer"]
    ```
    """

    name = "reverse_text"
    description = "reverse a passage, answer inside <reversed_text> tags"

    def __init__(
        self,
        num_train_examples: int = 2000,
        num_eval_examples: int = 100,
        min_chars: int = 10,
        max_chars: int = 30,
        format_weight: float = 0.2,
        data_seed: int = 0,
    ) -> None:
        if not 1 <= min_chars <= max_chars:
            raise ValueError(f"reverse_text: need 1 <= min_chars <= max_chars, got {min_chars}, {max_chars}")
        self.num_train_examples, self.num_eval_examples = num_train_examples, num_eval_examples
        self.min_chars, self.max_chars = min_chars, max_chars
        self.format_weight, self.data_seed = format_weight, data_seed
        train, evaluation = self._make_splits()
        rubric = Rubric([RewardFunction(lcs_reward, 1.0), RewardFunction(format_reward, format_weight)])
        super().__init__(dataset=train, eval_dataset=evaluation, system_prompt=SYSTEM_PROMPT, rubric=rubric)

    def _make_splits(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Disjoint train and eval passages, reproducible from `data_seed`."""
        rng = random.Random(self.data_seed)
        seen: set[str] = set()
        splits: list[list[dict[str, Any]]] = []
        for split, size in (("eval", self.num_eval_examples), ("train", self.num_train_examples)):
            rows: list[dict[str, Any]] = []
            attempts = 0
            while len(rows) < size and attempts < 50 * size + 100:
                attempts += 1
                passage = make_passage(rng, self.min_chars, self.max_chars)
                if passage not in seen:
                    seen.add(passage)
                    rows.append({"id": f"{split}-{len(rows)}", "prompt": passage, "answer": passage[::-1]})
            splits.append(rows)
        evaluation, train = splits
        return train, evaluation

    def baselines(self) -> dict[str, Any]:
        """`oracle` (correct answers) and `copy` (the passage unreversed)."""
        return {"oracle": oracle_baseline, "copy": copy_baseline}


def load_environment(**kwargs: Any) -> ReverseTextEnv:
    """Build the environment; see `ReverseTextEnv` for the arguments."""
    return ReverseTextEnv(**kwargs)

"""Parsers that pull answers out of model replies, and the format rewards that go with them."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from haystack import default_from_dict, default_to_dict

if TYPE_CHECKING:
    from haystack_rl.rollout import Rollout

_THINK = re.compile(r"\A\s*<think>.*?</think>", re.DOTALL)


class TagParser:
    """
    Extracts the answer inside `<tag>...</tag>` from a reply.

    Rules (defined for any text, never raising): the answer is the text between the LAST opening tag
    and the first closing tag after it (so nested tags give the innermost answer); no complete pair
    gives None; an empty pair gives "". `is_well_formed` is the strict format: an optional leading
    `<think>...</think>`, then exactly one `<tag>...</tag>` and nothing else but whitespace.

    Usage example:
    ```python
    from haystack_rl import TagParser

    parser = TagParser("reversed_text")
    assert parser.parse("<reversed_text>olleh</reversed_text>") == "olleh"
    assert parser.parse("no tags") is None
    assert not parser.is_well_formed("sure! <reversed_text>olleh</reversed_text>")
    ```
    """

    def __init__(self, tag: str, allow_think: bool = True) -> None:
        if not re.fullmatch(r"[A-Za-z_][\w\-]*", tag):
            raise ValueError(f"TagParser: invalid tag name {tag!r}")
        self.tag = tag
        self.allow_think = allow_think
        self.open, self.close = f"<{tag}>", f"</{tag}>"

    def parse(self, text: str | None) -> str | None:
        """The answer in the reply, or None when there is no complete tag pair."""
        if not text:
            return None
        # The last opening tag that a closing tag follows is the last one ending before the last closing
        # tag: two linear scans (trying each opening tag from the end is quadratic on hostile output).
        last_close = text.rfind(self.close)
        start = text.rfind(self.open, 0, last_close) if last_close != -1 else -1
        if start == -1:
            return None
        return text[start + len(self.open) : text.find(self.close, start + len(self.open))]

    def is_well_formed(self, text: str | None) -> bool:
        """Strict format: optional think block, exactly one tag pair, nothing else but whitespace."""
        if text is None:
            return False
        body = text
        if self.allow_think:
            match = _THINK.match(body)
            if match:
                body = body[match.end() :]
        body = body.strip()
        if not (body.startswith(self.open) and body.endswith(self.close)):
            return False
        inner = body[len(self.open) : len(body) - len(self.close)]
        return self.open not in inner and self.close not in inner

    def format_reward(self, rollout: Rollout) -> float:
        """Share of the rollout's assistant replies that are well formed (0 when it never replied)."""
        replies = [m.text for m in rollout.messages if m.is_from("assistant")]
        if not replies:
            return 0.0
        return sum(self.is_well_formed(text) for text in replies) / len(replies)

    def to_dict(self) -> dict[str, Any]:
        """Serialize."""
        return default_to_dict(self, tag=self.tag, allow_think=self.allow_think)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TagParser:
        """Deserialize."""
        return default_from_dict(cls, data)

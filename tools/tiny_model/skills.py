"""
Synthetic, task-agnostic chat conversations that teach `tiny` to read: copy, extract, look up, choose, call tools.

None of them is a shipped environment's task: the words, names, tools and instructions are made up here, so an
environment still has to be learned from its own demonstrations and rewards. What they give a model built from
scratch is the reading a pretrained LLM brings: copying a span from the prompt, finding a value by its key,
picking from a list, putting values from the question into a tool call, and reporting a tool's result.
"""

from __future__ import annotations

import json
import random
from typing import Any

Conversation = tuple[list[dict[str, Any]], list[dict[str, Any]] | None]
"""Hugging Face chat messages, and tool schemas (or None)."""

_WORDS = (
    "apple river stone light green small house table paper water music garden window bread cloud silver "
    "letter market summer winter yellow basket candle forest bridge doctor engine farmer finger flower "
    "friend hammer island jacket kettle ladder mirror needle orange pencil pocket rabbit saddle shadow "
    "ticket tunnel valley wagon wallet wheel yard bell coin lamp ship door road song star tree wind"
).split()
_ONSETS = "b br c ch d dr f g gr h k l m n p pr r s st t tr v w z".split()
_VOWELS = "a e i o u ai ea io".split()
_CODAS = ["", "", "n", "r", "l", "s", "k", "th", "m"]
_TAGS = ("answer", "result", "output", "reply", "value", "final", "choice", "pick", "text", "out")
_ATTRIBUTES = ("color", "code", "height", "owner", "age", "price", "size", "city", "number", "weight")
_THINGS = ("coins", "shells", "stamps", "marbles", "cards", "beads", "keys", "cups", "boxes", "seeds")


def _pseudo_word(rng: random.Random, syllables: int | None = None) -> str:
    count = syllables or rng.randint(1, 3)
    return "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS) for _ in range(count))


def _name(rng: random.Random) -> str:
    return _pseudo_word(rng, rng.randint(2, 3)).capitalize()


def _text(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.35:  # random characters: no prior to lean on, only copying predicts them
        alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-_ "
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(3, 30))).strip() or "x"
    if kind < 0.6:
        return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 6)))
    if kind < 0.8:
        return " ".join(_pseudo_word(rng) for _ in range(rng.randint(1, 5)))
    return " ".join(str(rng.randint(0, 999)) for _ in range(rng.randint(1, 5)))


def _value(rng: random.Random) -> str:
    return str(rng.randint(0, 2000)) if rng.random() < 0.5 else rng.choice([_pseudo_word(rng), rng.choice(_WORDS)])


class _AnswerTags:
    """Answer tags drawn for a conversation (or none): the instruction that names them, and replies wrapped in them."""

    def __init__(self, rng: random.Random) -> None:
        self.tag = None if rng.random() < 0.2 else rng.choice(_TAGS) if rng.random() < 0.7 else _pseudo_word(rng, 1)
        self.instruction = f" Answer inside <{self.tag}> </{self.tag}> tags." if self.tag else ""

    def wrap(self, text: str) -> str:
        return f"<{self.tag}>{text}</{self.tag}>" if self.tag else text


def _tagged(rng: random.Random, text: str) -> tuple[str, str]:
    """An instruction naming answer tags (or none), and `text` wrapped in them."""
    tags = _AnswerTags(rng)
    return tags.instruction, tags.wrap(text)


def copy_text(rng: random.Random) -> Conversation:
    """Repeat the user's text exactly, over one to three rounds."""
    tags = _AnswerTags(rng)
    system = rng.choice(["Repeat the text exactly.", "Copy the user's message.", "Say the same text back."])
    messages: list[dict[str, Any]] = [{"role": "system", "content": system + tags.instruction}]
    for _ in range(rng.randint(1, 3)):
        text = _text(rng)
        messages.append({"role": "user", "content": text})
        messages.append({"role": "assistant", "content": tags.wrap(text)})
    return messages, None


def _sentence_with_numbers(rng: random.Random, count: int) -> tuple[str, list[int]]:
    numbers = [rng.randint(1, 99) for _ in range(count)]
    parts = [f"{_name(rng)} has {numbers[0]} {rng.choice(_THINGS)}"]
    for number in numbers[1:]:
        verb = rng.choice(["finds", "gets", "loses", "gives away", "sees", "sells"])
        parts.append(f"{verb} {number} {rng.choice(_THINGS)}")
    return ", then ".join(parts) + ".", numbers


def list_numbers(rng: random.Random) -> Conversation:
    """Write the numbers of a sentence in order."""
    sentence, numbers = _sentence_with_numbers(rng, rng.randint(1, 4))
    instruction, answer = _tagged(rng, ", ".join(str(n) for n in numbers))
    return [
        {"role": "system", "content": "Write the numbers in the text, in order, separated by commas." + instruction},
        {"role": "user", "content": sentence},
        {"role": "assistant", "content": answer},
    ], None


def choose_option(rng: random.Random) -> Conversation:
    """Pick one of the listed options (any, the first or the last), over one to four rounds."""
    tags = _AnswerTags(rng)
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "Pick one of the options listed in each message." + tags.instruction}
    ]
    numeric = rng.random() < 0.5
    for _ in range(rng.randint(1, 4)):
        pool = [str(n) for n in range(1, 10)] if numeric else [_pseudo_word(rng) for _ in range(9)]
        options = rng.sample(pool, rng.randint(1, min(9, len(pool))))
        if numeric:
            options.sort(key=int)
        rule = rng.choice(["any", "any", "first", "last"])
        ask = {"any": "Pick one.", "first": "Pick the first one.", "last": "Pick the last one."}[rule]
        chosen = {"any": rng.choice(options), "first": options[0], "last": options[-1]}[rule]
        context = rng.choice(["", f"{_name(rng)} is waiting.\n\n", "Next round.\n\n"])
        messages.append({"role": "user", "content": f"{context}Options: {', '.join(options)}. {ask}"})
        messages.append({"role": "assistant", "content": tags.wrap(chosen)})
    return messages, None


def _records(rng: random.Random, count: int) -> tuple[list[str], list[str], str]:
    names = list(dict.fromkeys(_name(rng) for _ in range(count)))
    attribute = rng.choice(_ATTRIBUTES)
    values = [_value(rng) for _ in names]
    if rng.random() < 0.5:
        lines = [f"{name}: {attribute} {value}" for name, value in zip(names, values)]
    else:
        pairs = enumerate(zip(names, values))
        lines = [f"[{i}] {name}. The {attribute} of {name} is {value}." for i, (name, value) in pairs]
    return names, values, attribute + "\n" + "\n".join(lines)


def look_up(rng: random.Random) -> Conversation:
    """Find a value by its key in a list of records."""
    names, values, block = _records(rng, rng.randint(2, 6))
    attribute = block.split("\n", 1)[0]
    index = rng.randrange(len(names))
    instruction, answer = _tagged(rng, values[index])
    return [
        {"role": "system", "content": "Answer from the records." + instruction},
        {"role": "user", "content": f"{block.split(chr(10), 1)[1]}\n\nWhat is the {attribute} of {names[index]}?"},
        {"role": "assistant", "content": answer},
    ], None


def _tool(name: str, description: str, parameters: dict[str, str]) -> dict[str, Any]:
    properties = {key: {"type": kind} for key, kind in parameters.items()}
    schema = {"type": "object", "properties": properties, "required": list(parameters)}
    return {"type": "function", "function": {"name": name, "description": description, "parameters": schema}}


def call_tool(rng: random.Random) -> Conversation:
    """Call the right made-up tool with values from the question, then report (or look up in) its result."""
    style = rng.choice(["word", "numbers", "question"])
    verb = _pseudo_word(rng, 2)
    num_decoys = rng.choice([0, 0, 0, 1, 2])
    if style == "word":
        key = _name(rng)
        tool = _tool(f"{verb}_{rng.choice(_ATTRIBUTES)}", "Look up a record.", {"name": "string"})
        arguments: dict[str, Any] = {"name": key}
        ask_by_name = num_decoys > 0 or rng.random() < 0.5
        by_name, anonymous = f"Use {tool['function']['name']} for {key}.", f"What does the tool say about {key}?"
        question = by_name if ask_by_name else anonymous
    elif style == "numbers":
        question, numbers = _sentence_with_numbers(rng, 2)
        tool = _tool(f"{verb}_pair", "Combine two numbers.", {"a": "integer", "b": "integer"})
        arguments = {"a": numbers[0], "b": numbers[1]}
    else:
        key = _name(rng)
        question = f"What is the {rng.choice(_ATTRIBUTES)} of {key}?"
        tool = _tool(f"{verb}_search", "Search the notes.", {"query": "string"})
        arguments = {"query": question}
    decoys = [
        _tool(f"{_pseudo_word(rng, 2)}_{rng.choice(_ATTRIBUTES)}", "Another tool.", {"name": "string"})
        for _ in range(num_decoys)
    ]
    tools = decoys + [tool]
    rng.shuffle(tools)
    if style == "question":
        names, values, block = _records(rng, rng.randint(1, 3))
        names[0], values[0] = key, _value(rng)
        attribute = question.split(" of ")[0].removeprefix("What is the ")
        result = "\n".join(
            f"[{i}] {name}. The {attribute} of {name} is {value}." for i, (name, value) in enumerate(zip(names, values))
        )
        lines = result.split("\n")
        rng.shuffle(lines)
        result, final = "\n".join(lines), values[0]
    else:
        final = _value(rng)
        result = final
    instruction, answer = _tagged(rng, final)
    name = tool["function"]["name"]
    call = {"type": "function", "id": "call_0", "function": {"name": name, "arguments": arguments}}
    return [
        {"role": "system", "content": "Use the tools to answer." + instruction},
        {"role": "user", "content": question},
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "content": result, "tool_call_id": "call_0", "name": name},
        {"role": "assistant", "content": answer},
    ], tools


SKILLS = {
    "copy_text": (copy_text, 0.35),
    "list_numbers": (list_numbers, 0.15),
    "choose_option": (choose_option, 0.1),
    "look_up": (look_up, 0.15),
    "call_tool": (call_tool, 0.25),
}
"""Skill name -> (generator, share of the mixture)."""


def sample_conversation(rng: random.Random) -> tuple[str, Conversation]:
    """One conversation from the skill mixture, and the name of its skill."""
    names = list(SKILLS)
    name = rng.choices(names, weights=[SKILLS[n][1] for n in names])[0]
    return name, SKILLS[name][0](rng)


def describe(conversation: Conversation) -> str:
    """A readable dump (for debugging a generator)."""
    return json.dumps({"messages": conversation[0], "tools": conversation[1]}, indent=1)

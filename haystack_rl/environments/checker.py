"""Environment checker: `check_environment(env)` tests an environment against the contract, for its author."""

from __future__ import annotations

import json
import math
import random
import sys
from collections.abc import Callable, Sequence
from typing import Any

from haystack.core.serialization import component_from_dict, component_to_dict
from haystack.dataclasses import ChatMessage

from haystack_rl.asyncio_utils import run_sync
from haystack_rl.environments.base import Environment, EpisodeState
from haystack_rl.rollout import Rollout, TokenMismatchError

#: Model replies after which an episode that has not ended counts as never ending.
MAX_CHECK_STEPS = 200


class EnvironmentCheckError(AssertionError):
    """An environment breaks the contract; the message says what is wrong and how to fix it."""


def check_environment(
    env: Environment,
    policy: Any = None,
    seeds: Sequence[int] = (0, 1),
    num_examples: int = 2,
) -> None:
    """
    Check an environment the way its users will run it, in the spirit of Gymnasium's env checker.

    For the first `num_examples` eval examples and each seed, it checks: the `reset`/`step` contract
    (types, `state.messages` kept in sync, an end within a few hundred replies); determinism (two
    episodes with the same example, seed and scripted policy give the same transcript and info); the
    `to_dict`/`from_dict` round trip (the restored environment plays the same episode); and a real
    rollout through `RolloutRunner`'s episode loop: no error, scored without reward errors, JSON-
    serializable (`state.info` included) and round-tripping, with the `summary_breakdowns` keys present,
    and, when the policy returns token data, the prefix property and env masks of `completion_tokens()`.

    :param env: The environment to check.
    :param policy: A deterministic scripted policy: a function `(messages, rng) -> reply text` (or an
        assistant ChatMessage) or any
        Haystack chat generator. Default: the environment's first baseline, else a policy that echoes
        the last message.
    :param seeds: Episode seeds to try.
    :param num_examples: How many eval examples to try.
    :raises EnvironmentCheckError: On the first problem, with a sentence saying what is wrong and how to fix it.

    Usage example:
    ```python
    from haystack_rl import check_environment, load_environment

    check_environment(load_environment("reverse_text", num_eval_examples=2))
    ```
    """
    name = getattr(env, "name", type(env).__name__)
    if not isinstance(env, Environment):
        raise EnvironmentCheckError(f"{name}: {type(env).__name__} is not an Environment; subclass Environment, "
                                    "SingleTurnEnv or MultiTurnEnv")  # fmt: skip
    examples = env.examples("eval", num_examples)
    if not examples:
        raise EnvironmentCheckError(f"{name}: examples('eval') is empty; give the environment a dataset")
    play = _as_policy(env, policy)
    from haystack_rl.environments.pipeline_env import PipelineEnv

    episode = _play_with_player if isinstance(env, PipelineEnv) else _play  # a pipeline runs itself: no steps
    for example in examples:
        if not isinstance(example, dict) or "id" not in example:
            raise EnvironmentCheckError(f"{name}: example {example!r} is not a dict with an 'id'; "
                                        "examples must be dicts (Environment gives them ids)")  # fmt: skip
        for seed in seeds:
            where = f"{name}: example {example['id']!r}, seed {seed}"
            first = episode(env, play, example, seed, where)
            second = episode(env, play, example, seed, where)
            _compare(first, second, f"{where}: two episodes with the same example, seed and policy differ",
                     "derive all randomness from the seed (state.rng, or a seed derived from state.seed), "
                     "never from the global `random` module, time or set/dict iteration order")  # fmt: skip
            restored = _round_trip(env, where)
            _compare(first, episode(restored, play, example, seed, where),
                     f"{where}: the environment rebuilt by from_dict(to_dict()) plays a different episode",
                     "build everything from the constructor's arguments and do not change the environment after "
                     "construction (a to_dict of your own must keep every argument; without one, serialization is "
                     "generic)")  # fmt: skip
            _check_rollout(env, play, example, seed, where, first)


# --- policy ------------------------------------------------------------------------------------------
Policy = Callable[[list[ChatMessage], int], ChatMessage]


def _as_policy(env: Environment, policy: Any) -> Policy:
    """Turn a baseline function or a chat generator into `policy(messages, seed) -> reply`."""
    if policy is None:
        baselines = env.baselines()
        policy = next(iter(baselines.values())) if baselines else _echo
    if hasattr(policy, "run"):
        generator = policy

        def call_generator(messages: list[ChatMessage], seed: int) -> ChatMessage:
            kwargs: dict[str, Any] = {"messages": list(messages), "generation_kwargs": {"seed": seed}}
            if getattr(env, "tools", None) is not None:
                kwargs["tools"] = env.tools  # type: ignore[attr-defined]
            replies = generator.run(**kwargs).get("replies") or []
            if not replies:
                raise EnvironmentCheckError(f"the policy {type(generator).__name__} returned no reply")
            return replies[0]

        return call_generator
    if callable(policy):
        function = policy

        def call_function(messages: list[ChatMessage], seed: int) -> ChatMessage:
            out = function(list(messages), random.Random(seed))
            return out if isinstance(out, ChatMessage) else ChatMessage.from_assistant(str(out))

        return call_function
    raise EnvironmentCheckError(f"policy {policy!r} is neither a function (messages, rng) -> str nor a chat generator")


def _echo(messages: list[ChatMessage], rng: random.Random) -> str:
    return (messages[-1].text or "") if messages else ""


# --- one episode, contract checked at every call -------------------------------------------------------
def _play(env: Environment, policy: Policy, example: dict[str, Any], seed: int, where: str) -> dict[str, Any]:
    """Play one episode by hand, checking types; returns the transcript (messages without meta) and info."""
    result = env.reset(example, seed)
    if not (isinstance(result, tuple) and len(result) == 2):
        raise EnvironmentCheckError(f"{where}: reset() returned {type(result).__name__}; return (messages, state)")
    messages, state = result
    _check_messages(messages, f"{where}: reset()")
    if not isinstance(state, EpisodeState):
        raise EnvironmentCheckError(
            f"{where}: reset() returned a {type(state).__name__} as state; return an EpisodeState"
        )
    if not messages or [m.to_dict() for m in messages] != [m.to_dict() for m in state.messages]:
        raise EnvironmentCheckError(f"{where}: reset() returned messages that are not state.messages; "
                                    "return the opening conversation and keep it in state.messages")  # fmt: skip
    _check_json(state.info, f"{where}: state.info after reset()")
    done = False
    for step in range(MAX_CHECK_STEPS):
        before = len(state.messages)
        reply = policy(list(state.messages), step)
        out = env.step(state, reply)
        if not (isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], bool)):
            raise EnvironmentCheckError(
                f"{where}: step() returned {out!r}; return (new_messages, done) with done a bool"
            )
        new_messages, done = out
        _check_messages(new_messages, f"{where}: step() {step}")
        expected = [reply.to_dict()] + [m.to_dict() for m in new_messages]
        if [m.to_dict() for m in state.messages[before:]] != expected:
            raise EnvironmentCheckError(f"{where}: after step() {step}, state.messages does not end with the reply "
                                        "followed by the returned messages; append both to state.messages")  # fmt: skip
        _check_json(state.info, f"{where}: state.info after step() {step}")
        if done:
            break
    if not done:
        raise EnvironmentCheckError(f"{where}: the episode did not end within {MAX_CHECK_STEPS} replies; "
                                    "end it (done=True) or set max_turns")  # fmt: skip
    return {"messages": [_content(m) for m in state.messages], "info": json.loads(json.dumps(state.info))}


def _play_with_player(env: Environment, policy: Policy, example: dict[str, Any], seed: int,
                      where: str) -> dict[str, Any]:  # fmt: skip
    """An episode played by the episode player (for environments it alone can play, e.g. a pipeline)."""
    from haystack_rl.episode import play_episode

    rollout = run_sync(play_episode(env, _PolicyGenerator(policy), example, seed))
    if rollout.error:
        raise EnvironmentCheckError(f"{where}: the episode failed: {rollout.error}")
    _check_json(rollout.info, f"{where}: state.info at the end")
    return {"messages": [_content(m) for m in rollout.messages], "info": json.loads(json.dumps(rollout.info))}


def _check_messages(messages: Any, where: str) -> None:
    if not isinstance(messages, list) or not all(isinstance(m, ChatMessage) for m in messages):
        raise EnvironmentCheckError(f"{where} returned {type(messages).__name__} {messages!r:.80}; "
                                    "return a list of haystack ChatMessage")  # fmt: skip


def _content(message: ChatMessage) -> dict[str, Any]:
    """A message without its meta (generators may put timings there)."""
    data = message.to_dict()
    data.pop("meta", None)
    return data


def _compare(first: dict[str, Any], second: dict[str, Any], problem: str, fix: str) -> None:
    for index, (a, b) in enumerate(zip(first["messages"], second["messages"])):
        if a != b:
            raise EnvironmentCheckError(f"{problem} at message {index} ({_short(a)} vs {_short(b)}); {fix}")
    if len(first["messages"]) != len(second["messages"]):
        raise EnvironmentCheckError(f"{problem}: {len(first['messages'])} vs {len(second['messages'])} messages; {fix}")
    if first["info"] != second["info"]:
        keys = sorted(
            k for k in set(first["info"]) | set(second["info"]) if first["info"].get(k) != second["info"].get(k)
        )
        raise EnvironmentCheckError(f"{problem} in state.info {keys}; {fix}")


def _short(message: dict[str, Any]) -> str:
    return repr(ChatMessage.from_dict({**message, "meta": {}}).text or message)[:80]


# --- serialization ---------------------------------------------------------------------------------------
def _round_trip(env: Environment, where: str) -> Environment:
    from haystack_rl.internals import allowed_modules

    try:
        data = component_to_dict(env, env.name)
        json.dumps(data)
    except Exception as error:
        raise EnvironmentCheckError(f"{where}: to_dict() failed or is not JSON/YAML-friendly ({type(error).__name__}: "
                                    f"{error}); pass the constructor JSON-friendly values, components, tools or "
                                    "module-level functions (no to_dict of your own is needed)") from error  # fmt: skip
    try:
        # the data was just written from the author's own live object, so the modules it names may be imported
        with allowed_modules(_imported_modules_named(data)):
            restored = component_from_dict(type(env), data, env.name)
    except Exception as error:
        raise EnvironmentCheckError(f"{where}: from_dict(to_dict()) failed ({type(error).__name__}: "
                                    f"{_short_error(error)}); if you wrote to_dict/from_dict, make them symmetric, or "
                                    "delete them (serialization is generic)") from error  # fmt: skip
    if not isinstance(restored, type(env)):
        raise EnvironmentCheckError(
            f"{where}: from_dict returned a {type(restored).__name__}, not a {type(env).__name__}"
        )
    return restored


def _imported_modules_named(data: Any) -> set[str]:
    """Top-level packages, already imported in this process, that dotted names in serialized data start with."""
    found: set[str] = set()
    if isinstance(data, dict):
        for value in data.values():
            found |= _imported_modules_named(value)
    elif isinstance(data, list):
        for value in data:
            found |= _imported_modules_named(value)
    elif isinstance(data, str) and "." in data and " " not in data:
        top = data.split(".", 1)[0]
        if top in sys.modules:
            found.add(top)
    return found


def _short_error(error: Exception) -> str:
    """A Haystack loading error without its advice to load unsafely."""
    return " ".join(str(error).split()).split(" If you trust the source", 1)[0]


def _check_json(value: Any, where: str) -> None:
    path = _unserializable(value, "")
    if path is not None:
        raise EnvironmentCheckError(f"{where} is not JSON-serializable at {path}; keep only str, int, float, "
                                    "bool, None, lists and str-keyed dicts (it goes to results.jsonl)")  # fmt: skip


def _unserializable(value: Any, path: str) -> str | None:
    """Path and type of the first value that JSON cannot hold exactly, or None."""
    if value is None or isinstance(value, (str, bool, int)):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{path or 'value'} ({value})"
    if isinstance(value, list):
        return next((p for i, v in enumerate(value) if (p := _unserializable(v, f"{path}[{i}]"))), None)
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{path}[{key!r}] (a {type(key).__name__} key)"
            found = _unserializable(item, f"{path}[{key!r}]")
            if found:
                return found
        return None
    return f"{path or 'value'} (a {type(value).__name__})"


# --- a real rollout ------------------------------------------------------------------------------------
def _check_rollout(
    env: Environment, policy: Policy, example: dict[str, Any], seed: int, where: str, expected: dict[str, Any]
) -> None:
    from haystack_rl.episode import play_episode

    rollout = run_sync(play_episode(env, _PolicyGenerator(policy), example, seed))
    if rollout.error:
        raise EnvironmentCheckError(f"{where}: the rollout failed: {rollout.error}; fix the environment (or pass a "
                                    "policy that plays it correctly)")  # fmt: skip
    _compare(expected, {"messages": [_content(m) for m in rollout.messages], "info": expected["info"]},
             f"{where}: the rollout loop (play_episode) and direct reset/step calls give different episodes",
             "keep all episode state in the EpisodeState (info, objects), not on the environment")  # fmt: skip
    env.score_group([rollout])
    if rollout.reward_errors:
        raise EnvironmentCheckError(f"{where}: reward functions raised {rollout.reward_errors}; make them handle "
                                    "every finished rollout (read state through rollout.info)")  # fmt: skip
    if rollout.reward is None or not math.isfinite(rollout.reward):
        raise EnvironmentCheckError(f"{where}: the rubric gave reward {rollout.reward}; return finite floats")
    missing = [key for key in env.summary_breakdowns if key not in rollout.info]
    if missing:
        raise EnvironmentCheckError(f"{where}: summary_breakdowns names {missing}, which the finished state.info "
                                    "lacks; set them in reset or drop them from summary_breakdowns")  # fmt: skip
    record = rollout.to_dict()
    record.pop("timing", None)
    _check_json(record, f"{where}: the rollout record")
    try:
        back = Rollout.from_json(rollout.to_json())
    except Exception as error:
        raise EnvironmentCheckError(f"{where}: the rollout does not survive a JSON round trip ({type(error).__name__}: "
                                    f"{error}); keep example and info JSON-friendly") from error  # fmt: skip
    if [_content(m) for m in back.messages] != [_content(m) for m in rollout.messages] or back.info != rollout.info:
        raise EnvironmentCheckError(f"{where}: the rollout changes in a JSON round trip; keep example and info "
                                    "JSON-friendly (no tuples, sets or non-str keys)")  # fmt: skip
    if rollout.turns:
        try:
            ids, mask, logprobs = rollout.completion_tokens()
        except TokenMismatchError as error:
            raise EnvironmentCheckError(
                f"{where}: {error}; the policy's chat template must render each turn's "
                "prompt as the previous prompt + completion + the new messages"
            ) from error
        generated = sum(len(turn.completion_ids) for turn in rollout.turns)
        if not (len(ids) == len(mask) == len(logprobs)) or sum(mask) != generated:
            raise EnvironmentCheckError(f"{where}: the env mask marks {sum(mask)} model tokens but the model generated "
                                        f"{generated}; tokens the environment wrote must get mask 0")  # fmt: skip


class _PolicyGenerator:
    """The checker's policy as a minimal chat generator, for `play_episode`."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    def run(
        self, messages: list[ChatMessage], generation_kwargs: dict[str, Any] | None = None, tools: Any = None
    ) -> dict[str, Any]:
        turn = sum(m.is_from("assistant") for m in messages)
        return {"replies": [self.policy(messages, turn)]}

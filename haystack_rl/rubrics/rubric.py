"""Rubric: weighted reward functions over finished rollouts (weight 0 = a metric)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from haystack import component, default_from_dict, default_to_dict
from haystack.core.serialization import import_class_by_name
from haystack.utils import deserialize_callable, serialize_callable

from haystack_rl.rollout import Rollout

RewardFn = Callable[["Rollout"], float]
GroupRewardFn = Callable[[Sequence["Rollout"]], Sequence[float]]


@dataclass
class RewardFunction:
    """
    A named, weighted reward function.

    :param func: `func(rollout) -> float`, or with `group=True`, `func(rollouts) -> list[float]`.
    :param weight: Weight in the total reward; 0 makes it a metric (reported, not rewarded).
    :param name: Name in results and logs (default: the function's `__name__`).
    :param group: Whether `func` scores a whole group of rollouts of one example at once.
    """

    func: Callable[..., Any]
    weight: float = 1.0
    name: str = ""
    group: bool = False

    def __post_init__(self) -> None:
        if not self.name:
            self.name = getattr(self.func, "__name__", type(self.func).__name__)


@component
class Rubric:
    """
    Scores finished rollouts with weighted reward functions.

    Each function receives the `Rollout` explicitly (no argument injection by name). The total reward is
    `sum(w * r) / sum(positive w)` when `normalize` is on (the default, so a perfect rollout scores 1
    whatever the weights) and `sum(w * r)` otherwise. A function that raises is recorded in
    `rollout.reward_errors` and leaves `rollout.reward` as None when it carried weight: never a silent 0.

    Usage example:
    ```python
    from haystack_rl import Rollout, Rubric

    def length(rollout):
        return float(len(rollout.completion))

    def nonempty(rollout):
        return float(bool(rollout.completion))

    rubric = Rubric.from_functions([nonempty, length], weights=[1.0, 0.0])
    rollout = rubric.score(Rollout(example_id="0", rollout_index=0, seed=0))
    assert rollout.reward == 0.0 and rollout.metrics == {"length": 0.0}
    ```
    """

    def __init__(self, functions: list[RewardFunction] | None = None, normalize: bool = True) -> None:
        self.functions: list[RewardFunction] = list(functions or [])
        self.normalize = normalize
        names = [f.name for f in self.functions]
        if len(set(names)) != len(names):
            raise ValueError(f"Rubric: reward function names must be unique, got {names}")

    @classmethod
    def from_functions(
        cls, functions: Sequence[Callable[..., Any]], weights: Sequence[float] | None = None, normalize: bool = True
    ) -> Rubric:
        """Build a rubric from plain functions (weights default to 1)."""
        weights = list(weights) if weights is not None else [1.0] * len(functions)
        if len(weights) != len(functions):
            raise ValueError(f"Rubric: {len(functions)} functions but {len(weights)} weights")
        return cls([RewardFunction(f, w) for f, w in zip(functions, weights)], normalize=normalize)

    def add(self, func: Callable[..., Any], weight: float = 1.0, name: str = "", group: bool = False) -> Rubric:
        """Add a reward function (returns self, so calls chain)."""
        added = RewardFunction(func, weight, name, group)
        if added.name in {f.name for f in self.functions}:
            raise ValueError(f"Rubric: a reward function named {added.name!r} already exists")
        self.functions.append(added)
        return self

    @property
    def reward_names(self) -> list[str]:
        """Names of the functions that carry weight."""
        return [f.name for f in self.functions if f.weight != 0]

    @property
    def metric_names(self) -> list[str]:
        """Names of the weight-0 functions."""
        return [f.name for f in self.functions if f.weight == 0]

    def score(self, rollout: Rollout) -> Rollout:
        """Score one rollout (group functions see a group of one)."""
        return self.score_group([rollout])[0]

    @property
    def weights(self) -> list[float]:
        """
        Each function's weight in the total reward, normalized when `normalize` is on (divided by the sum of
        positive weights, so `sum(w * r)` is the total), as TRL's `reward_weights` want them.
        """
        scale = self._scale()
        return [f.weight / scale if scale > 0 else f.weight for f in self.functions]

    @property
    def max_reward(self) -> float:
        """
        The best total reward when every reward function returns its best value, taken as 1 (so 1.0 when
        `normalize` is on); `Environment.is_success` compares with it by default.
        """
        return 1.0 if self._scale() > 0 else sum(f.weight for f in self.functions if f.weight > 0)

    def score_group(self, rollouts: Sequence[Rollout]) -> list[Rollout]:
        """Score the rollouts of one example together; fills reward, rewards, metrics and reward_errors."""
        from haystack_rl.asyncio_utils import run_sync

        return run_sync(self.score_group_async(rollouts))

    async def score_group_async(self, rollouts: Sequence[Rollout]) -> list[Rollout]:
        """
        Async twin of `score_group`: every function scores every rollout concurrently; an `async def` function,
        or an object with `score_async` (e.g. `JudgeReward`), is awaited, so slow judges do not wait on
        each other; plain functions run inline. A rollout that ended in an error (`Rollout.error`: a dead
        endpoint, a failing environment) is not the model's answer: it is left unscored (reward None, counted
        in a summary's `n_unscored` and `errors`), never a silent 0; group functions see the other rollouts.
        """
        played = [rollout for rollout in rollouts if not rollout.error]
        if not played:
            return list(rollouts)
        start = time.perf_counter()
        results = await asyncio.gather(*(self._call(fn, played) for fn in self.functions))
        for fn, values in zip(self.functions, results):
            for rollout, value in zip(played, values):
                if isinstance(value, BaseException):
                    rollout.reward_errors[fn.name] = f"{type(value).__name__}: {value}"
                elif fn.weight == 0:
                    rollout.metrics[fn.name] = value
                else:
                    rollout.rewards[fn.name] = value
        elapsed = (time.perf_counter() - start) / len(played)
        for rollout in played:
            rollout.reward = self._total(rollout)
            rollout.timing["scoring_s"] = elapsed
        return list(rollouts)

    async def _call(self, fn: RewardFunction, rollouts: Sequence[Rollout]) -> list[float | BaseException]:
        scorer = getattr(fn.func, "score_async", None)
        asynchronous = scorer is not None or inspect.iscoroutinefunction(fn.func)
        call = scorer if scorer is not None else fn.func

        async def one(argument: Any) -> Any:
            value = call(argument)
            return await value if asynchronous else value

        try:
            if fn.group:
                values = list(await one(rollouts))
                if len(values) != len(rollouts):
                    raise ValueError(f"group function returned {len(values)} values for {len(rollouts)} rollouts")
                return [float(v) for v in values]
        except Exception as error:  # noqa: BLE001 - recorded on every rollout of the group
            return [error] * len(rollouts)
        outcomes = await asyncio.gather(*(one(rollout) for rollout in rollouts), return_exceptions=True)
        out: list[float | BaseException] = []
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                out.append(outcome)  # recorded on the rollout, never a silent 0
                continue
            try:
                out.append(float(outcome))
            except (TypeError, ValueError) as error:
                out.append(error)
        return out

    def _total(self, rollout: Rollout) -> float | None:
        weighted = [f for f in self.functions if f.weight != 0]
        if any(f.name in rollout.reward_errors for f in weighted):
            return None
        total = sum(f.weight * rollout.rewards[f.name] for f in weighted)
        scale = self._scale()
        return total / scale if scale > 0 else total

    def _scale(self) -> float:
        return sum(f.weight for f in self.functions if f.weight > 0) if self.normalize else 0.0

    @component.output_types(rollouts=list[Rollout])
    def run(self, rollouts: list[Rollout]) -> dict[str, Any]:
        """Score rollouts, grouped by `group_id`."""
        groups: dict[str, list[Rollout]] = {}
        for rollout in rollouts:
            groups.setdefault(rollout.group_id, []).append(rollout)
        for group in groups.values():
            self.score_group(group)
        return {"rollouts": rollouts}

    def to_dict(self) -> dict[str, Any]:
        """
        Serialize; functions are stored by import path, so they must be module-level functions, and
        callable objects with `to_dict`/`from_dict` (e.g. `JudgeReward`) as their own config.
        """
        return default_to_dict(
            self,
            functions=[
                {**_serialize_function(f.func), "weight": f.weight, "name": f.name, "group": f.group}
                for f in self.functions
            ],  # fmt: skip
            normalize=self.normalize,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Rubric:
        """Deserialize; function paths go through Haystack's deserialization allowlist."""
        params = dict(data.get("init_parameters", {}))
        params["functions"] = [
            RewardFunction(_deserialize_function(f), f.get("weight", 1.0), f.get("name", ""), bool(f.get("group")))
            for f in params.get("functions", [])
        ]
        return default_from_dict(cls, {**data, "init_parameters": params})


def _serialize_function(func: Callable[..., Any]) -> dict[str, Any]:
    if not callable(getattr(func, "to_dict", None)):
        return {"function": serialize_callable(func)}
    data = func.to_dict()  # type: ignore[attr-defined]
    if not (isinstance(data, dict) and "type" in data):
        raise TypeError(f"Rubric: {type(func).__name__}.to_dict() must return a dict with a 'type' (default_to_dict)")
    return {"object": data}


def _deserialize_function(data: dict[str, Any]) -> Callable[..., Any]:
    if "object" in data:
        cls: Any = import_class_by_name(data["object"]["type"])  # checked against Haystack's allowlist
        return cls.from_dict(data["object"])  # type: ignore[no-any-return]
    return deserialize_callable(data["function"])

"""Environment registry: `load_environment(name or code reference, **kwargs)` for shipped and users' environments."""

from __future__ import annotations

import inspect
import typing
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from haystack_rl.environments.base import Environment
from haystack_rl.trust import UserCodeError, is_code_reference, load_callable, trust_modules

#: Entry-point group where packages register `name = "package.module:load_environment"` (shipped ones too).
ENTRY_POINT_GROUP = "haystack_rl.environments"


class UnknownEnvironmentError(KeyError):
    """No registered environment has this name (the message lists the known ones)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _entry_points() -> dict[str, EntryPoint]:
    return {point.name: point for point in entry_points(group=ENTRY_POINT_GROUP)}


def trust_registered_environments() -> None:
    """Trust, for YAML loading, the package of every registered environment (named by its installer)."""
    trust_modules({point.module.split(".", 1)[0] for point in _entry_points().values()})


def available_environments() -> dict[str, str]:
    """Every registered environment, with its one-line description (the environment class's `description`)."""
    out: dict[str, str] = {}
    for name, point in sorted(_entry_points().items()):
        try:
            out[name] = describe(point.load())
        except Exception as error:  # noqa: BLE001 - a broken plug-in must not hide the others
            out[name] = f"(cannot be imported: {type(error).__name__}: {error})"
    return out


def describe(loader: Any) -> str:
    """
    The description of the environment a loader builds: the `description` of the class its return type
    names, else of the one `Environment` subclass its module defines, else the module's first docstring line.
    """
    try:
        returned = typing.get_type_hints(loader).get("return")
    except Exception:  # noqa: BLE001 - unresolvable annotations: fall back to the module
        returned = None
    if isinstance(returned, type) and issubclass(returned, Environment) and returned.description:
        return returned.description
    module = inspect.getmodule(loader)
    classes = {value for value in vars(module).values() if isinstance(value, type) and issubclass(value, Environment)
               and value.description} if module else set()  # fmt: skip
    if len(classes) == 1:
        return next(iter(classes)).description
    doc = (inspect.getdoc(module) or "").strip().splitlines() if module else []
    return doc[0] if doc else ""


def environment_loader(name: str) -> Any:
    """
    The `load_environment`-like function behind a name: a registered environment, or a code reference
    (`path/to/file.py:function` or `package.module:function`) whose module is then trusted for YAML loading.
    """
    if is_code_reference(name):
        return load_callable(name)
    points = _entry_points()
    if name not in points:
        hint = f"; to load a file, name its function: {name}:load_environment" if name.endswith(".py") else ""
        raise UnknownEnvironmentError(f"unknown environment {name!r}; available: {', '.join(sorted(points)) or 'none'}"
                                      f" (or path/to/file.py:function, package.module:function){hint}")  # fmt: skip
    point = points[name]
    trust_modules([point.module.split(".", 1)[0]])
    return point.load()


def load_environment(name: str, **kwargs: Any) -> Environment:
    """
    Build an environment: a registered one by name (the `haystack_rl.environments` entry-point group, where the
    shipped ones are too: `NAME = "pkg.module:load_environment"`), or a user's own, not yet packaged, by code
    reference: `path/to/file.py:load_environment` or `package.module:load_environment`.

    Usage example:
    ```python
    from haystack_rl import load_environment

    env = load_environment("reverse_text", num_eval_examples=10)
    assert len(env.examples("eval")) == 10
    ```
    """
    function = environment_loader(name)
    try:
        environment = function(**kwargs)
    except TypeError as error:
        raise TypeError(f"{name}: bad environment arguments {sorted(kwargs)}: {error}") from error
    if not isinstance(environment, Environment):
        raise UserCodeError(f"{name}: returned {type(environment).__name__}, not an Environment; return an instance "
                            "of a SingleTurnEnv, MultiTurnEnv, ToolEnv or Environment subclass")  # fmt: skip
    return environment

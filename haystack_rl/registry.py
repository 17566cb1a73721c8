"""Environment registry: `load_environment(name, **kwargs)` for shipped and third-party environments."""

from __future__ import annotations

import importlib
import pkgutil
from importlib.metadata import entry_points
from typing import Any

from haystack_rl.environments.base import Environment

ENTRY_POINT_GROUP = "haystack_rl.environments"
SHIPPED_PACKAGE = "haystack_rl_envs"


def _loaders() -> dict[str, Any]:
    """Name -> loader (an entry point or a shipped module), third-party entry points first."""
    loaders: dict[str, Any] = {}
    shipped = importlib.import_module(SHIPPED_PACKAGE)
    for info in pkgutil.iter_modules(shipped.__path__):
        loaders[info.name] = f"{SHIPPED_PACKAGE}.{info.name}"
    for point in entry_points(group=ENTRY_POINT_GROUP):
        loaders.setdefault(point.name, point)
    return loaders


def available_environments() -> dict[str, str]:
    """Every environment that `load_environment` can find, with its one-line description."""
    out: dict[str, str] = {}
    for name, loader in sorted(_loaders().items()):
        try:
            module = importlib.import_module(loader if isinstance(loader, str) else loader.module)
            doc = (module.__doc__ or "").strip().splitlines()
            out[name] = doc[0] if doc else ""
        except Exception as error:  # noqa: BLE001 - a broken plug-in must not hide the others
            out[name] = f"(cannot be imported: {type(error).__name__}: {error})"
    return out


def load_environment(name: str, **kwargs: Any) -> Environment:
    """
    Build an environment by name: a shipped one (`envs/NAME`) or a third-party one registered under the
    `haystack_rl.environments` entry-point group (`NAME = "pkg.module:load_environment"`).

    Usage example:
    ```python
    from haystack_rl import load_environment

    env = load_environment("reverse_text", num_eval_examples=10)
    assert len(env.examples("eval")) == 10
    ```
    """
    loaders = _loaders()
    if name not in loaders:
        raise KeyError(f"unknown environment {name!r}; available: {', '.join(sorted(loaders)) or 'none'}")
    loader = loaders[name]
    function = importlib.import_module(loader).load_environment if isinstance(loader, str) else loader.load()
    try:
        environment = function(**kwargs)
    except TypeError as error:
        raise TypeError(f"{name}: bad environment arguments {sorted(kwargs)}: {error}") from error
    if not isinstance(environment, Environment):
        raise TypeError(f"{name}: load_environment returned {type(environment).__name__}, not an Environment")
    return environment

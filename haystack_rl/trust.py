"""
What YAML loading may import, and loading the user's own code: trust exactly what the user named.

Haystack refuses to deserialize classes and functions from modules outside its allowlist. This package, its
shipped environments and Haystack itself are trusted; besides them, only what the user explicitly named is:
environments registered under the `haystack_rl.environments` entry point, modules given with `--allow-module`
or a config's `allow_modules`, code named on the command line (`path/to/file.py:function` or
`module:function`), and the module of an environment handed to `check_environment`. Never `unsafe=True`.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from haystack.core.serialization import allow_deserialization_module

#: Modules whose components our own YAML files name.
BUILT_IN_MODULES = ("haystack_rl", "haystack_rl_envs")


class UserCodeError(ValueError):
    """The user's own code cannot be found or imported; the message says what to do (one or two lines)."""


def trust_modules(names: Iterable[str]) -> None:
    """Allow YAML loading to import from these modules (and their submodules), for this process."""
    for name in names:
        name = name.strip()
        if not name or not all(part.isidentifier() for part in name.split(".")):
            raise UserCodeError(f"--allow-module {name!r}: not a module name (e.g. my_envs or my_envs.games)")
        allow_deserialization_module(name)


def trust_object(obj: Any) -> None:
    """Trust the top-level package of an object's class (the user handed us the object, so they trust it)."""
    module = type(obj).__module__
    trust_modules([module.split(".", 1)[0]])


def add_working_directory() -> None:
    """
    Put the current directory first on `sys.path`, as `python -m` does, so a user's module next to their YAML
    or config imports by name (a console script does not do it on its own).
    """
    cwd = str(Path.cwd())
    if cwd not in sys.path:
        sys.path.insert(0, cwd)


def import_module(name: str) -> Any:
    """Import a module by name, or raise `UserCodeError` saying how to make it importable."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name and name.startswith(error.name):
            raise UserCodeError(f"cannot import module {name!r}: no module named {error.name!r}; run from the "
                                "directory that holds it, add that directory to PYTHONPATH, or pip install "
                                "its package") from None  # fmt: skip
        raise UserCodeError(f"cannot import module {name!r}: it needs {error.name!r}, which is not installed "
                            f"({error})") from None  # fmt: skip
    except Exception as error:  # noqa: BLE001 - the user's module failed while importing
        raise UserCodeError(f"module {name!r} failed while importing: {type(error).__name__}: {error}") from None


def import_file(path: Path) -> Any:
    """
    Import a Python file as a module named after its stem (so its classes and functions have the import path
    YAML files record, as when it is imported from its directory), its directory put on `sys.path`.
    """
    if not path.is_file():
        raise UserCodeError(f"file not found: {path}")
    if path.suffix != ".py":
        raise UserCodeError(f"{path}: expected a .py file")
    name = path.stem
    if not name.isidentifier():
        raise UserCodeError(f"{path}: the file name must be a valid module name (letters, digits, _)")
    loaded = sys.modules.get(name)
    if loaded is not None:
        if Path(getattr(loaded, "__file__", "") or "").resolve() == path.resolve():
            return loaded
        raise UserCodeError(f"{path}: a different module named {name!r} is already imported "
                            f"({getattr(loaded, '__file__', 'built in')}); rename the file")  # fmt: skip
    directory = str(path.resolve().parent)
    if directory not in sys.path:
        sys.path.insert(0, directory)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:  # pragma: no cover - a .py file always has a spec
        raise UserCodeError(f"{path}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as error:  # noqa: BLE001 - the user's file failed while importing
        del sys.modules[name]
        raise UserCodeError(f"{path} failed while importing: {type(error).__name__}: {error}") from None
    return module


def is_code_reference(text: str) -> bool:
    """Whether `text` names code (`path/to/file.py:function` or `module:function`) rather than a registered name."""
    target, sep, attribute = text.rpartition(":")
    return bool(sep and target and attribute.isidentifier() and (target.endswith(".py") or _is_module_name(target)))


def load_callable(reference: str) -> Callable[..., Any]:
    """
    The function (or class) a reference names, `path/to/file.py:function` or `package.module:function`; its
    module is trusted for YAML loading (the user named it).

    Usage example:
    ```python
    from haystack_rl.trust import load_callable

    loader = load_callable("haystack_rl_envs.reverse_text:load_environment")
    assert loader(num_eval_examples=1).name == "reverse_text"
    ```
    """
    target, sep, attribute = reference.rpartition(":")
    if not is_code_reference(reference):
        raise UserCodeError(f"{reference!r}: expected path/to/file.py:function or package.module:function")
    module = import_file(Path(target)) if target.endswith(".py") else import_module(target)
    trust_modules([module.__name__.split(".", 1)[0]])
    found = getattr(module, attribute, None)
    if found is None or not callable(found):
        available = sorted(k for k, v in vars(module).items() if callable(v) and not k.startswith("_")
                           and getattr(v, "__module__", None) == module.__name__)[:8]  # fmt: skip
        raise UserCodeError(f"{reference}: {module.__name__} has no function {attribute!r} "
                            f"(it has: {', '.join(available) or 'nothing callable'})")  # fmt: skip
    return found  # type: ignore[no-any-return]


def _is_module_name(text: str) -> bool:
    return all(part.isidentifier() for part in text.split("."))

"""
Generic `to_dict`/`from_dict` for objects rebuilt from their constructor arguments (every `Environment`).

An object that records its constructor arguments (`record_init_arguments`, called from `__new__`) serializes
as Haystack's `{"type": ..., "init_parameters": ...}` envelope with no serialization code of its own. Values go
through `encode_value`/`decode_value`: JSON-friendly values as they are; Haystack components and anything with a
`to_dict` (rubrics, generators, secrets) as their own dicts; Haystack tools and toolsets as Haystack serializes
them; module-level functions as `{"callable": "module.function"}`. Decoding imports classes and functions through
Haystack's deserialization allowlist (see `haystack_rl.trust`), never with `unsafe=True`.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Mapping
from typing import Any

from haystack.core.serialization import generate_qualified_class_name, import_class_by_name
from haystack.utils import deserialize_callable, serialize_callable

#: Attribute holding the recorded constructor arguments (name -> value) of an instance.
INIT_ARGUMENTS = "_init_arguments"
#: Key marking a serialized function.
CALLABLE_KEY = "callable"
#: Key marking a serialized Python type (e.g. in an Agent's state schema).
TYPE_KEY = "python_type"


class SerializationError(ValueError):
    """A constructor argument that cannot be written to YAML/JSON, or data that cannot be read back."""


def record_init_arguments(instance: object, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """
    Remember the arguments `type(instance)` was constructed with, by parameter name (from `__new__`).

    Arguments that do not bind to the constructor's signature (e.g. `copy.copy` calling `__new__` bare) leave
    nothing recorded; `init_arguments` then says so.
    """
    try:
        bound = inspect.signature(type(instance).__init__).bind(instance, *args, **kwargs)
    except TypeError:
        return
    recorded: dict[str, Any] = {}
    parameters = inspect.signature(type(instance).__init__).parameters
    for name, value in list(bound.arguments.items())[1:]:
        kind = parameters[name].kind
        if kind is inspect.Parameter.VAR_KEYWORD:
            recorded.update(value)
        elif kind is inspect.Parameter.VAR_POSITIONAL:
            if value:
                recorded["*" + name] = list(value)
        else:
            recorded[name] = value
    object.__setattr__(instance, INIT_ARGUMENTS, recorded)


def init_arguments(instance: object) -> dict[str, Any]:
    """The constructor arguments recorded for `instance` (by parameter name)."""
    recorded = getattr(instance, INIT_ARGUMENTS, None)
    if recorded is None:
        raise SerializationError(
            f"{type(instance).__name__}: its constructor arguments were not recorded (was it built with copy.copy "
            "or __new__?); build it by calling the class"
        )
    starred = [name for name in recorded if name.startswith("*")]
    if starred:
        raise SerializationError(f"{type(instance).__name__} was given positional arguments through {starred[0]}; "
                                 "pass them by keyword so they can be serialized")  # fmt: skip
    return dict(recorded)


def encode_value(value: Any, where: str = "value") -> Any:
    """
    A YAML/JSON-friendly form of `value` that `decode_value` turns back into an equal object.

    :param where: How errors name the value (e.g. `"MyEnv.dataset"`).
    :raises SerializationError: For a value of no known form (a lambda, a local function, an open file...).
    """
    from haystack.tools import Tool, Toolset

    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Tool | Toolset):
        return value.to_dict()
    if callable(getattr(value, "to_dict", None)) and not isinstance(value, type):
        return value.to_dict()
    if isinstance(value, list | tuple):
        return [encode_value(item, f"{where}[{index}]") for index, item in enumerate(value)]
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise SerializationError(f"{where}: key {key!r} is a {type(key).__name__}; use str keys")
            out[key] = encode_value(item, f"{where}[{key!r}]")
        return out
    if isinstance(value, type) or typing.get_origin(value) is not None or value is typing.Any:
        from haystack.utils.type_serialization import serialize_type

        return {TYPE_KEY: serialize_type(value)}
    if inspect.isfunction(value) or inspect.isbuiltin(value) or inspect.ismethod(value):
        if "<lambda>" in value.__qualname__ or "<locals>" in value.__qualname__:
            raise SerializationError(f"{where}: {value.__qualname__} is a lambda or a local function, which cannot "
                                     "be serialized; define it at module level")  # fmt: skip
        return {CALLABLE_KEY: serialize_callable(value)}
    raise SerializationError(
        f"{where}: cannot serialize a {type(value).__name__}; use JSON-friendly values, components or objects with "
        "to_dict/from_dict, tools, or module-level functions"
    )


def decode_value(data: Any) -> Any:
    """The object `encode_value` wrote (classes and functions imported through Haystack's allowlist)."""
    if isinstance(data, list):
        return [decode_value(item) for item in data]
    if not isinstance(data, dict):
        return data
    keys = set(data)
    if keys == {CALLABLE_KEY} and isinstance(data[CALLABLE_KEY], str):
        return deserialize_callable(data[CALLABLE_KEY])
    if keys == {TYPE_KEY} and isinstance(data[TYPE_KEY], str):
        from haystack.utils.type_serialization import deserialize_type

        return deserialize_type(data[TYPE_KEY])
    type_name = data.get("type")
    if isinstance(type_name, str) and "." in type_name and keys in ({"type", "init_parameters"}, {"type", "data"}):
        cls: Any = import_class_by_name(type_name)
        from_dict: Callable[[dict[str, Any]], Any] | None = getattr(cls, "from_dict", None)
        if from_dict is None:
            raise SerializationError(f"{type_name} has no from_dict; it cannot be rebuilt from YAML")
        return from_dict(data)
    if type_name == "env_var" and "env_vars" in data:
        from haystack.utils import Secret

        return Secret.from_dict(data)
    return {key: decode_value(value) for key, value in data.items()}


def to_dict(instance: object, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """
    Haystack's `{"type", "init_parameters"}` envelope of an object that recorded its constructor arguments.

    :param extra: Init parameters to add (e.g. a name set after construction).
    """
    cls_name = type(instance).__name__
    parameters = {**init_arguments(instance), **(extra or {})}
    encoded = {name: encode_value(value, f"{cls_name}.{name}") for name, value in parameters.items()}
    return {"type": generate_qualified_class_name(type(instance)), "init_parameters": encoded}


def init_parameters_from_dict(data: dict[str, Any]) -> dict[str, Any]:
    """The decoded init parameters of a `to_dict` envelope."""
    return {name: decode_value(value) for name, value in (data.get("init_parameters") or {}).items()}

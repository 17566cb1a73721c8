"""
Typed settings: pydantic models that read YAML-like dicts, take `--set a.b=value` overrides, give a JSON Schema,
and turn every validation problem into one line that names the key, the value and what is allowed.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from haystack_rl.overrides import OverrideError, apply_to_mapping, parse_override

S = TypeVar("S", bound="Settings")


class SettingsError(ValueError):
    """Settings that cannot be used (unknown key, bad value, bad override); the message is one line."""


class Settings(BaseModel):
    """
    Base of typed settings: unknown keys are errors, and each field's docstring is its description.

    Usage example:
    ```python
    from haystack_rl.settings import Settings, SettingsError

    class Run(Settings):
        steps: int = 10
        \"\"\"Optimizer steps.\"\"\"

    assert Run.load({"steps": 5}, overrides=["steps=7"]).steps == 7
    try:
        Run.load({"stepz": 5})
    except SettingsError as error:
        assert str(error) == "unknown key 'stepz'; valid: steps"
    ```
    """

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, validate_assignment=True)

    #: The error class `load` raises (subclasses of `SettingsError`, e.g. a training `ConfigError`).
    error_class: ClassVar[type[SettingsError]] = SettingsError

    @classmethod
    def load(cls: type[S], data: dict[str, Any] | None = None, overrides: Sequence[str] = ()) -> S:
        """Validate `data` after applying `key.sub=value` overrides; raise `error_class` with one line."""
        merged = copy.deepcopy(dict(data or {}))
        try:
            for text in overrides:
                apply_to_mapping(merged, *parse_override(text))
        except OverrideError as problem:
            raise cls.error_class(str(problem)) from None
        try:
            return cls.model_validate(merged)
        except ValidationError as problem:
            raise cls.error_class(describe(problem, cls)) from None

    def to_dict(self) -> dict[str, Any]:
        """A plain nested dict (YAML/JSON friendly) that `load` reads back."""
        return self.model_dump(mode="json")


def describe(error: ValidationError, model: type[BaseModel]) -> str:
    """The first problem of a validation error as one line: the dotted key, the value, what is allowed."""
    first = error.errors(include_url=False)[0]
    location = [str(part) for part in first["loc"]]
    key = ".".join(location)
    if first["type"] == "extra_forbidden":
        section = _section(model, location[:-1])
        valid = ", ".join(sorted(section.model_fields)) if section is not None else ""
        return f"unknown key {key!r}; valid: {valid}"
    message = str(first["msg"]).removeprefix("Value error, ")
    if not location:  # a check across fields
        return message
    return f"{key}: {message[0].lower()}{message[1:]} (got {first.get('input')!r})"


def _section(model: type[BaseModel], path: list[str]) -> type[BaseModel] | None:
    section: Any = model
    for part in path:
        field = section.model_fields.get(part) if isinstance(section, type) and issubclass(section, BaseModel) else None
        if field is None:
            return None
        section = field.annotation
    return section if isinstance(section, type) and issubclass(section, BaseModel) else None

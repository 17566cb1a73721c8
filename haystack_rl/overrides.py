"""
`--set a.b=value` overrides, the one syntax of `train`, `eval` and `run`: a dotted key, `=`, and a value read as
YAML (so `3`, `1e-4`, `true`, `null`, `[q, v]` and `{a: 1}` have their types).
"""

from __future__ import annotations

from typing import Any

import yaml


class OverrideError(ValueError):
    """An override that cannot be read or applied; the message shows the expected form."""


def parse_override(text: str, form: str = "KEY[.SUB...]=VALUE, e.g. grpo.steps=10") -> tuple[list[str], Any]:
    """
    `a.b.c=value` -> (["a", "b", "c"], the value read as YAML; an empty value is ""). `form` is how an error
    shows the expected form.

    Usage example:
    ```python
    from haystack_rl.overrides import parse_override

    assert parse_override("grpo.lr=1e-4") == (["grpo", "lr"], 1e-4)
    assert parse_override("env_args.opponents=[random, minimax]")[1] == ["random", "minimax"]
    ```
    """
    key, sep, raw = text.partition("=")
    path = key.strip().split(".")
    if not sep or not all(path):
        raise OverrideError(f"--set {text!r}: expected {form}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as error:
        raise OverrideError(f"--set {text!r}: the value is not valid YAML ({' '.join(str(error).split())})") from None
    return path, _numeric(value)


def _numeric(value: Any) -> Any:
    """YAML 1.1 reads `1e-4` as a string; read it as the number it is."""
    if isinstance(value, str):
        try:
            return float(value) if any(c in value.lower() for c in ".e") else value
        except ValueError:
            return value
    return value


def apply_to_mapping(data: dict[str, Any], path: list[str], value: Any) -> None:
    """Set `data[a][b]... = value` (a config), creating sections on the way; a non-mapping in the way is an error."""
    node = data
    for depth, part in enumerate(path[:-1]):
        child = node.setdefault(part, {})
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise OverrideError(f"--set {'.'.join(path)}: {'.'.join(path[: depth + 1])} is a value, not a section")
        node = child
    node[path[-1]] = value


def apply_to_pipeline(pipeline: dict[str, Any], path: list[str], value: Any) -> None:
    """
    Set an init parameter in a pipeline dict: `COMPONENT.PARAM[.SUB...]`. Nested components are entered through
    their `init_parameters` (`runner.policy.model`); plain mappings directly (`runner.generation_kwargs.seed`).

    Usage example:
    ```python
    from haystack_rl.overrides import apply_to_pipeline, parse_override

    data = {"components": {"runner": {"type": "x", "init_parameters": {"policy": {"type": "y",
            "init_parameters": {"model": "tiny"}}}}}}
    apply_to_pipeline(data, *parse_override("runner.policy.model=runs/x/final"))
    assert data["components"]["runner"]["init_parameters"]["policy"]["init_parameters"]["model"] == "runs/x/final"
    ```
    """
    components = pipeline.get("components") or {}
    name = path[0]
    if len(path) < 2:
        raise OverrideError(f"--set {'.'.join(path)}: expected COMPONENT.PARAM[.SUB...]=VALUE, e.g. runner.seed=1")
    if name not in components:
        raise OverrideError(f"--set {'.'.join(path)}: no component {name!r}; the pipeline has: {', '.join(components)}")
    node: dict[str, Any] = components[name].get("init_parameters") or {}
    components[name]["init_parameters"] = node
    for depth, part in enumerate(path[1:-1], start=1):
        child = node.get(part)
        if not isinstance(child, dict):
            where = ".".join(path[: depth + 1])
            raise OverrideError(f"--set {'.'.join(path)}: {where} is not a component or a mapping, cannot go inside it")
        if "type" in child and "init_parameters" in child:
            child["init_parameters"] = child["init_parameters"] or {}
            child = child["init_parameters"]
        node = child
    node[path[-1]] = value

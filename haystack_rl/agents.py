"""Agent definitions in YAML: find and load the Haystack `Agent` of a file, and point its generator at a model."""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import yaml
from haystack.components.agents import Agent

AGENT_TYPE = "haystack.components.agents.agent.Agent"
logger = logging.getLogger(__name__)


class AgentDefinitionError(ValueError):
    """An agent YAML that holds no usable Agent (or several), or that cannot be loaded."""


def read_agent_yaml(path: str | Path) -> dict[str, Any]:
    """The YAML of an agent file as a dict (a pipeline, or a single component with `type: ...Agent`)."""
    path = Path(path)
    if not path.is_file():
        raise AgentDefinitionError(f"agent file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise AgentDefinitionError(f"{path}: not valid YAML: {' '.join(str(error).split())}") from None
    if not isinstance(data, dict):
        raise AgentDefinitionError(f"{path}: expected a mapping (a pipeline or an Agent component)")
    return data


def find_agent(data: dict[str, Any], where: str = "agent definition") -> dict[str, Any]:
    """
    The one Agent component dict (`type` + `init_parameters`) in `data`: the dict itself, a pipeline
    component, or an Agent nested in another component (e.g. the policy of an eval pipeline's runner).
    Identical copies count once (an eval YAML repeats the deployed agent); distinct ones are an error.
    """
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == AGENT_TYPE:
                if node not in found:
                    found.append(node)
                return
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(data)
    if not found:
        raise AgentDefinitionError(f"{where}: no component of type {AGENT_TYPE}")
    if len(found) > 1:
        raise AgentDefinitionError(f"{where}: {len(found)} different Agent components; keep one per file")
    return found[0]


def load_agent(source: Agent | str | Path | dict[str, Any]) -> Agent:
    """
    A Haystack `Agent` from an instance (returned as is), an agent YAML file, or its dict. Loading goes
    through Haystack's deserialization with this package allowlisted (never `unsafe=True`).

    Usage example:
    ```python
    from haystack_rl.agents import load_agent

    agent = load_agent("pipelines/search_agent.yml")
    assert agent.tools[0].name == "search" and agent.max_agent_steps == 6
    ```
    """
    if isinstance(source, Agent):
        return source
    import haystack_rl  # noqa: F401 - allowlists our modules for deserialization

    where = str(source) if isinstance(source, str | Path) else "agent definition"
    data = read_agent_yaml(source) if isinstance(source, str | Path) else source
    component = find_agent(data, where)
    try:
        return Agent.from_dict(copy.deepcopy(component))
    except Exception as error:  # noqa: BLE001 - any loading failure is a problem of this definition
        message = " ".join(str(error).split()).split(" If you trust the source", 1)[0]
        raise AgentDefinitionError(f"{where}: cannot load the Agent: {type(error).__name__}: {message}") from None


def with_model(data: dict[str, Any], model: str) -> dict[str, Any]:
    """
    A copy of an agent YAML dict whose Agent's chat generator uses `model` (its `model` init parameter,
    e.g. a trained checkpoint directory); nothing else changes.

    Usage example:
    ```python
    from haystack_rl.agents import find_agent, read_agent_yaml, with_model

    deployed = with_model(read_agent_yaml("pipelines/search_agent.yml"), "runs/search/final")
    generator = find_agent(deployed)["init_parameters"]["chat_generator"]
    assert generator["init_parameters"]["model"] == "runs/search/final"
    ```
    """
    out = copy.deepcopy(data)
    generator = find_agent(out)["init_parameters"].get("chat_generator")
    if not isinstance(generator, dict) or "model" not in (generator.get("init_parameters") or {}):
        raise AgentDefinitionError("the Agent's chat_generator has no `model` init parameter to point at a model")
    generator["init_parameters"]["model"] = model
    return out


def deploy_model(agent_yaml: str | Path, model: str, output: str | Path) -> tuple[Path, list[str]]:
    """
    Write `agent_yaml` to `output` with only its generator's model path changed (see `with_model`), and compare
    the result with how the model was trained (`haystack_rl.deploy.check_deploy`, as `haystack-rl check-deploy`).

    :returns: The written file, and the differences from training (one line each; logged as warnings too).
    """
    from haystack_rl.deploy import check_deploy

    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(yaml.safe_dump(with_model(read_agent_yaml(agent_yaml), model), sort_keys=False))
    differences = check_deploy(output, model)
    for line in differences:
        logger.warning("%s differs from training: %s", output, line)
    return output, differences

"""
Deployment parity: does the Agent YAML you deploy use the model the way training did? Chat template, tool-call
format, tools and their schemas, system prompt, step limit and generation settings, compared one by one.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

#: The record of how a model was trained to be used, written into its final directory.
TRAINING_CARD = "haystack_rl_training.json"


class DeploymentMismatchError(ValueError):
    """A deployment that uses the trained model differently from training; one line per difference."""


def training_card(environment: Any, model_dir: str | Path, max_new_tokens: int, temperature: float) -> dict[str, Any]:
    """
    How training used the model: its chat template (hash), the tool-call format that template renders, the
    environment's tools (names and schemas), system prompt and turn limit, and the evaluation's generation
    settings (what deployment should match to behave as evaluated).
    """
    from haystack.tools import flatten_tools_or_toolsets

    template = _model_template(model_dir)
    tools = flatten_tools_or_toolsets(getattr(environment, "tools", None))
    generators = getattr(environment, "generator", None)  # a PipelineEnv: the components the model plays
    return {
        "environment": environment.name,
        "generators": [generators] if isinstance(generators, str) else generators,
        "chat_template_sha256": _sha(template),
        "tool_format": _tool_format(template),
        "tools": {tool.name: tool.tool_spec for tool in tools},
        "system_prompt": environment.system_prompt,
        "max_turns": getattr(environment, "max_turns", None),
        "max_new_tokens": max_new_tokens,
        "temperature": temperature,
    }


def write_training_card(model_dir: str | Path, card: dict[str, Any]) -> Path:
    """Write the card into the model directory."""
    path = Path(model_dir) / TRAINING_CARD
    path.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def read_training_card(model_dir: str | Path) -> dict[str, Any]:
    """The card training wrote into a model directory; `DeploymentMismatchError` when there is none."""
    path = Path(model_dir) / TRAINING_CARD
    if not path.is_file():
        raise DeploymentMismatchError(f"{model_dir}: no {TRAINING_CARD} (was it trained by haystack-rl?); pass "
                                      "--config TRAIN.yml to compare with a training config instead")  # fmt: skip
    card: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return card


def deployment_card(agent_yaml: str | Path | dict[str, Any]) -> dict[str, Any]:
    """The same figures, read off a deployed Agent (its generator, tools, system prompt and step limit)."""
    from haystack.tools import flatten_tools_or_toolsets

    from haystack_rl.agents import load_agent

    agent = load_agent(agent_yaml)
    generator = agent.chat_generator
    model = getattr(generator, "model", None)
    template = getattr(generator, "chat_template", None)
    if template and "{" not in template and Path(template).is_file():
        template = Path(template).read_text(encoding="utf-8")
    if template is None and model is not None:
        template = _model_template(model)
    return {
        "generator": type(generator).__name__,
        "model": str(model) if model is not None else None,
        "chat_template_sha256": _sha(template),
        "tool_format": getattr(generator, "tool_parser", None) or _tool_format(template),
        "tools": {tool.name: tool.tool_spec for tool in flatten_tools_or_toolsets(agent.tools)},
        "system_prompt": agent.system_prompt,
        "max_turns": agent.max_agent_steps,
        **_generation_settings(generator.to_dict().get("init_parameters", {}) if hasattr(generator, "to_dict") else {}),
    }


def pipeline_deployment_cards(pipeline_yaml: str | Path, generators: list[str]) -> dict[str, dict[str, Any]]:
    """The figures of each named generator component of a deployed pipeline YAML (read, not loaded)."""
    import yaml

    data = yaml.safe_load(Path(pipeline_yaml).read_text(encoding="utf-8"))
    components = (data or {}).get("components") or {}
    cards: dict[str, dict[str, Any]] = {}
    for name in generators:
        if name not in components:
            raise DeploymentMismatchError(f"{pipeline_yaml}: no component {name!r} (training played {generators})")
        params = components[name].get("init_parameters") or {}
        model, template = params.get("model"), params.get("chat_template")
        if template and "{" not in str(template) and Path(str(template)).is_file():
            template = Path(str(template)).read_text(encoding="utf-8")
        if template is None and model is not None:
            template = _model_template(model)
        tool_format = params.get("tool_parser") or _tool_format(template)
        cards[name] = {"model": model, "chat_template_sha256": _sha(template), "tool_format": tool_format,
                       **_generation_settings(params)}  # fmt: skip
    return cards


def compare(trained: dict[str, Any], deployed: dict[str, Any], model_dir: str | Path | None = None) -> list[str]:
    """
    The differences between how a model was trained to be used and how a deployment uses it, one line each.

    Usage example:
    ```python
    from haystack_rl.deploy import compare

    trained = {"system_prompt": "Be brief.", "tools": {}, "max_turns": 4, "max_new_tokens": 64, "temperature": 0.0}
    deployed = {**trained, "system_prompt": "Be verbose.", "max_new_tokens": 32}
    assert [line.split(":")[0] for line in compare(trained, deployed)] == ["system prompt", "max_new_tokens"]
    ```
    """
    out: list[str] = []
    if model_dir is not None and deployed.get("model") is not None:
        if Path(str(deployed["model"])).resolve() != Path(model_dir).resolve():
            out.append(f"model: the Agent loads {deployed['model']}, the trained model is {model_dir}")
    if trained.get("chat_template_sha256") != deployed.get("chat_template_sha256"):
        out.append("chat template: the deployed generator renders prompts with another template than training did")
    if trained.get("tool_format") != deployed.get("tool_format"):
        out.append(f"tool-call format: training parsed {trained.get('tool_format')!r} calls, the deployed template "
                   f"renders {deployed.get('tool_format')!r}")  # fmt: skip
    out += _tool_differences(trained.get("tools") or {}, deployed.get("tools") or {})
    if trained.get("system_prompt") != deployed.get("system_prompt"):
        out.append(f"system prompt: training used {_short(trained.get('system_prompt'))}, the Agent has "
                   f"{_short(deployed.get('system_prompt'))}")  # fmt: skip
    if trained.get("max_turns") is not None and trained.get("max_turns") != deployed.get("max_turns"):
        out.append(f"max steps: training allowed {trained['max_turns']} model replies, the Agent's max_agent_steps "
                   f"is {deployed.get('max_turns')}")  # fmt: skip
    budget = deployed.get("max_new_tokens")
    if budget is not None and trained.get("max_new_tokens") is not None and budget < trained["max_new_tokens"]:
        out.append(f"max_new_tokens: the generator stops at {budget} tokens, training evaluated with "
                   f"{trained['max_new_tokens']} (longer replies would be cut)")  # fmt: skip
    temperature = deployed.get("temperature")
    if temperature is not None and trained.get("temperature") is not None and temperature != trained["temperature"]:
        out.append(f"temperature: the generator samples at {temperature}, training evaluated at "
                   f"{trained['temperature']}")  # fmt: skip
    return out


def check_deploy(agent_yaml: str | Path, model_dir: str | Path, config: str | Path | None = None) -> list[str]:
    """
    Compare a deployed Agent YAML (or, for a model trained in a pipeline, the pipeline YAML's generators) with
    how `model_dir` was trained (its training card, or a training config's environment and evaluation settings);
    returns the differences, one line each (empty: a faithful deploy).
    """
    if config is None:
        trained = read_training_card(model_dir)
    else:
        from haystack_rl.training.config import TrainConfig

        settings = TrainConfig.from_yaml(config)
        max_new = settings.eval.max_new_tokens or settings.grpo.max_new_tokens
        trained = training_card(settings.build_environment(), model_dir, max_new, settings.eval.temperature)
    if trained.get("generators"):  # a pipeline: each generator component the model played
        pipeline_fields = ("model", "chat_template_sha256", "tool_format", "max_new_tokens", "temperature")
        trained_call = {key: trained.get(key) for key in pipeline_fields}
        cards = pipeline_deployment_cards(agent_yaml, trained["generators"])
        return [f"{name}: {line}" for name, card in cards.items() for line in compare(trained_call, card, model_dir)]
    return compare(trained, deployment_card(agent_yaml), model_dir)


def _tool_differences(trained: dict[str, Any], deployed: dict[str, Any]) -> list[str]:
    out = [f"tool {name!r}: trained with, missing from the Agent" for name in sorted(set(trained) - set(deployed))]
    out += [f"tool {name!r}: the Agent has it, training never saw it" for name in sorted(set(deployed) - set(trained))]
    for name in sorted(set(trained) & set(deployed)):
        if json.dumps(trained[name], sort_keys=True) != json.dumps(deployed[name], sort_keys=True):
            out.append(f"tool {name!r}: its description or parameter schema differs from training's")
    return out


def _generation_settings(params: dict[str, Any]) -> dict[str, Any]:
    """A generator's `max_new_tokens` and `temperature`, from its init parameters (or their generation_kwargs)."""
    kwargs = params.get("generation_kwargs") or {}
    budget = kwargs.get("max_new_tokens", kwargs.get("max_tokens", params.get("max_new_tokens")))
    return {"max_new_tokens": budget, "temperature": kwargs.get("temperature", params.get("temperature"))}


def _model_template(model_dir: str | Path) -> str | None:
    from haystack_rl.models.tiny import BUILT_IN_MODELS, resolve_model

    path = Path(resolve_model(str(model_dir))) if str(model_dir) in BUILT_IN_MODELS else Path(model_dir)
    config = path / "tokenizer_config.json"
    jinja = path / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    if config.is_file():
        template = json.loads(config.read_text(encoding="utf-8")).get("chat_template")
        return template if isinstance(template, str) else None
    return None


def _tool_format(template: str | None) -> str | None:
    if template is None:
        return None
    from haystack_rl.chat.tool_parsers import detect_tool_format

    return detect_tool_format(template)


def _sha(text: str | None) -> str | None:
    return hashlib.sha256(text.encode()).hexdigest() if text is not None else None


def _short(text: str | None) -> str:
    return "none" if text is None else repr(text if len(text) <= 60 else text[:57] + "...")

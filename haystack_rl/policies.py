"""The policy behind a `--model` spec: a scripted baseline, a served model, or a local model."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

#: Sent to local servers when no API key variable is named.
DUMMY_API_KEY = "no-key"
#: Prefix of scripted-policy specs.
BASELINE_PREFIX = "baseline:"


class PolicySpecError(ValueError):
    """A `--model` spec that names nothing usable; the message lists what would work."""


def build_policy(
    model: str,
    environment: Any,
    base_url: str | None = None,
    api_key_env: str | None = None,
    max_tokens: int = 256,
    temperature: float = 1.0,
    max_retries: int = 2,
    timeout: float = 60.0,
    tokens: bool = False,
    concurrency: int = 64,
) -> tuple[Any, dict[str, Any]]:
    """
    The policy generator for a `--model` spec, and the generation kwargs to run it with.

    - `baseline:NAME`: the environment's scripted baseline; `baseline:path/to/file.py:function` or
      `baseline:package.module:function`: any scripted policy `(messages, rng) -> reply`;
    - with `base_url`: `OpenAICompatibleChatGenerator` on that OpenAI-compatible server (a connection pool of
      `concurrency`; each request retried `max_retries` times on 429s, 5xx, timeouts and dropped connections with
      the openai SDK's backoff, which honours Retry-After; `timeout` seconds per request); with `tokens` too,
      `TokenChatGenerator` on it (exact token ids over vLLM's completions API; the chat template renders here,
      with the tokenizer of the model directory);
    - `tiny`, `tiny-init` or an existing model directory: the in-process `TokenChatGenerator`.

    Usage example:
    ```python
    from haystack_rl import load_environment
    from haystack_rl.policies import build_policy

    env = load_environment("reverse_text", num_eval_examples=1)
    policy, kwargs = build_policy("baseline:haystack_rl_envs.reverse_text:copy_baseline", env)
    assert policy.run(env.reset(env.examples()[0], seed=0)[0])["replies"][0].text.startswith("<reversed_text>")
    ```

    :raises PolicySpecError: For a spec that names nothing usable.
    """
    from haystack_rl.models.tiny import BUILT_IN_MODELS

    if model.startswith(BASELINE_PREFIX):
        return _baseline(model[len(BASELINE_PREFIX) :], environment), {}
    if tokens and not base_url:
        raise PolicySpecError("--tokens needs --base-url (a server that returns token ids, e.g. vLLM's)")
    if base_url:
        from haystack.utils import Secret

        if api_key_env:
            if not os.environ.get(api_key_env):
                raise PolicySpecError(f"--api-key-env {api_key_env}: that environment variable is not set")
            api_key = Secret.from_env_var(api_key_env)
        else:
            api_key = Secret.from_token(DUMMY_API_KEY)
        if tokens:
            from haystack_rl.generators.token import TokenChatGenerator

            settings = {"max_new_tokens": max_tokens, "temperature": temperature}
            remote = TokenChatGenerator(model=model, base_url=base_url, api_key=api_key, timeout=timeout,
                                        max_retries=max_retries, generation_kwargs=settings)  # fmt: skip
            return remote, {}
        from haystack_rl.generators.openai_compatible import OpenAICompatibleChatGenerator

        served = OpenAICompatibleChatGenerator(model=model, api_base_url=base_url, api_key=api_key, timeout=timeout,
                                               max_retries=max_retries, max_connections=concurrency)  # fmt: skip
        return served, {"max_tokens": max_tokens, "temperature": temperature}
    if model in BUILT_IN_MODELS or Path(model).is_dir():
        from haystack_rl.generators.token import TokenChatGenerator

        settings = {"max_new_tokens": max_tokens, "temperature": temperature}
        return TokenChatGenerator(model=model, generation_kwargs=settings), {}
    raise PolicySpecError(
        f"model directory not found: {model!r}; use tiny, tiny-init, an existing model directory, baseline:NAME, "
        "or a served model name with --base-url URL"
    )


def _baseline(name: str, environment: Any) -> Any:
    from haystack_rl.generators import FunctionChatGenerator
    from haystack_rl.trust import is_code_reference, load_callable

    if is_code_reference(name):
        function = load_callable(name)
        return FunctionChatGenerator(function, name=name.rpartition(":")[2])
    baselines = environment.baselines()
    if name not in baselines:
        known = ", ".join(f"baseline:{b}" for b in sorted(baselines)) or "none"
        raise PolicySpecError(
            f"{environment.name} has no baseline {name!r}; available: {known}, or any scripted policy as "
            "baseline:path/to/file.py:function or baseline:package.module:function"
        )
    return FunctionChatGenerator(baselines[name], name=name)

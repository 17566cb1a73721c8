"""`haystack-rl init`: a new environment package (env, rubric, baselines, entry point, configs, tests)."""

from __future__ import annotations

import keyword
import re
from importlib.resources import files
from pathlib import Path

#: Environment kinds and the template each starts from.
KINDS = {"single": "env_single.py.txt", "multi": "env_multi.py.txt", "tool": "env_tool.py.txt"}
DESCRIPTIONS = {
    "single": "count the vowels of a word, answer inside <answer> tags (single-turn)",
    "multi": "guess a number from 1 to 100 with higher/lower hints, answer <guess>N</guess> (multi-turn)",
    "tool": "convert lengths between units with a convert tool, answer inside <answer> tags (tool use)",
}


class ScaffoldError(ValueError):
    """The package cannot be written (bad name, existing directory); the message says what to do."""


def create_project(name: str, kind: str, directory: str | Path = ".") -> Path:
    """
    Write a new environment package `directory/NAME`: `NAME/env.py` (data, episode, rubric, baselines,
    `load_environment`), `pyproject.toml` registering it under the `haystack_rl.environments` entry point,
    `configs/train.yml`, `pipelines/eval.yml`, `tests/test_env.py` and a README. It installs with
    `pip install -e`, passes `check_environment` and its own tests, and trains with `haystack-rl train`.

    Usage example:
    ```python
    import tempfile
    from haystack_rl.scaffold import create_project

    root = create_project("guess_number", "multi", tempfile.mkdtemp())
    assert (root / "guess_number" / "env.py").exists() and (root / "configs" / "train.yml").exists()
    ```

    :param name: The environment's name (letters, digits, `_` or `-`); the package is its `_` form.
    :param kind: "single", "multi" or "tool".
    :returns: The new project directory.
    """
    if kind not in KINDS:
        raise ScaffoldError(f"--kind {kind!r}: use one of {', '.join(KINDS)}")
    package = name.replace("-", "_").lower()
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", package) or keyword.iskeyword(package):
        raise ScaffoldError(f"{name!r} is not a usable name: use letters, digits, '_' or '-', starting with a letter")
    root = Path(directory) / package
    if root.exists():
        raise ScaffoldError(f"{root} already exists; choose another name or --dir")
    replacements = {
        "__NAME__": package,
        "__PACKAGE__": package,
        "__DIST__": package.replace("_", "-"),
        "__CLASS__": "".join(part.capitalize() for part in package.split("_") if part) + "Env",
        "__KIND__": kind,
        "__DESCRIPTION__": DESCRIPTIONS[kind],
    }
    layout = {
        "pyproject.toml": "pyproject.toml.txt",
        "README.md": "README.md.txt",
        f"{package}/__init__.py": "__init__.py.txt",
        f"{package}/env.py": KINDS[kind],
        "configs/train.yml": "train.yml.txt",
        "pipelines/eval.yml": "eval.yml.txt",
        "tests/test_env.py": "test_env.py.txt",
    }
    templates = files(__package__) / "templates"
    for target, template in layout.items():
        text = (templates / template).read_text(encoding="utf-8")
        for placeholder, value in replacements.items():
            text = text.replace(placeholder, value)
        path = root / target
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root

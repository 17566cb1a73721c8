"""Every usage example in a public docstring runs (STYLE.md: a usage example that a test runs)."""

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

import haystack_rl
import haystack_rl_envs
import tools

BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)
SKIP_MODULES = ("haystack_rl.cli", "haystack_rl.training")  # examples there need a model or a terminal


def _examples():
    for package in (haystack_rl, haystack_rl_envs, tools):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if info.name.startswith(SKIP_MODULES):
                continue
            module = importlib.import_module(info.name)
            for name, obj in vars(module).items():
                if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
                    continue
                if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                    continue
                for index, code in enumerate(BLOCK.findall(inspect.getdoc(obj) or "")):
                    yield pytest.param(code, id=f"{info.name}.{name}[{index}]")


EXAMPLES = list(_examples())


def test_there_are_examples():
    assert len(EXAMPLES) >= 8


@pytest.mark.parametrize("code", EXAMPLES)
def test_docstring_example_runs(code, tmp_path, monkeypatch):
    (tmp_path / "pipelines").symlink_to(Path(__file__).resolve().parent.parent / "pipelines")
    monkeypatch.chdir(tmp_path)  # examples run as from the repository root, and what they write lands here
    exec(compile(code, "<docstring>", "exec"), {})

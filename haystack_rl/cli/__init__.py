"""The `haystack-rl` command: list environments, evaluate, run YAML pipelines, train, report on runs, scaffold."""

from haystack_rl.cli import deploy, envs, evaluate, pipeline, report, scaffold, train  # noqa: F401 - each registers a command
from haystack_rl.cli.app import app


def main() -> None:
    """Entry point for `python -m haystack_rl.cli`."""
    app()


__all__ = ["app", "main"]

"""The `haystack-rl` Typer app, its consoles, and how user errors are shown: one line, no traceback."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.markup import escape

app = typer.Typer(
    name="haystack-rl",
    help="RL environments for LLMs, built as Haystack components.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)
#: Environment variable that shows tracebacks of user errors, as `--debug` does.
DEBUG_ENV = "HAYSTACK_RL_DEBUG"


class CliError(Exception):
    """A user error: printed as one line, exit code 2."""


def fail(message: str) -> typer.Exit:
    """Print a one-line error to stderr and return the exit to raise (code 2)."""
    one_line = escape(" ".join(message.split()))
    err_console.print(f"[bold red]error:[/bold red] {one_line}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


def user_error_types() -> tuple[type[BaseException], ...]:
    """Exceptions that mean the user's input is wrong (shown as one line), not that the program is."""
    from haystack.core.errors import DeserializationError

    from haystack_rl.agents import AgentDefinitionError
    from haystack_rl.environments.base import DemonstrationError
    from haystack_rl.overrides import OverrideError
    from haystack_rl.policies import PolicySpecError
    from haystack_rl.registry import UnknownEnvironmentError
    from haystack_rl.serialization import SerializationError
    from haystack_rl.settings import SettingsError
    from haystack_rl.trust import UserCodeError

    return (CliError, UserCodeError, OverrideError, PolicySpecError, UnknownEnvironmentError, AgentDefinitionError,
            SerializationError, DeserializationError, DemonstrationError, SettingsError,
            *_training_errors())  # fmt: skip


def _training_errors() -> tuple[type[BaseException], ...]:
    try:
        from haystack_rl.training.config import ConfigError
        from haystack_rl.training.preflight import DemonstrationSetupError
    except ImportError:  # training is not installed
        return ()
    return (ConfigError, DemonstrationSetupError)


@contextmanager
def user_errors(prefix: str = "") -> Iterator[None]:
    """Show a user error as one line (exit code 2), or with its traceback under `--debug`."""
    try:
        yield
    except user_error_types() as error:
        if debugging():
            raise
        raise fail(f"{prefix}{error}") from None


def debugging() -> bool:
    """Whether `--debug` (or `HAYSTACK_RL_DEBUG=1`) asks for tracebacks."""
    return os.environ.get(DEBUG_ENV, "") not in ("", "0", "false")


@app.callback()
def main_options(
    debug: bool = typer.Option(False, "--debug", help="Show the traceback of an error instead of one line."),
) -> None:
    """RL environments for LLMs, built as Haystack components."""
    if debug:
        os.environ[DEBUG_ENV] = "1"
    # tool failures inside episodes are data (recorded in each transcript), not errors of this program
    logging.getLogger("haystack.components.agents.tool_calling").setLevel(logging.CRITICAL)


def quiet_libraries() -> None:
    """Keep the terminal for our own progress bars and tables: no library progress bars or info logs."""
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)  # libraries' deprecation notices, not ours
    if "datasets" in sys.modules or _importable("datasets"):
        import datasets

        datasets.disable_progress_bars()
    if _importable("transformers"):
        import transformers

        transformers.utils.logging.disable_progress_bar()
        transformers.utils.logging.set_verbosity_error()


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def command_line() -> str:
    """The command as the user typed it (for records)."""
    import shlex

    return shlex.join(["haystack-rl", *sys.argv[1:]])

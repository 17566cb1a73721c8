"""
The docs site's generated pages: a mkdocs hook that renders the CLI reference from the Typer app, the train config
reference from its JSON Schema, and the results page from `bench/README.md`, at build time.

A page asks for a part with a marker line, e.g. `<!-- generated: cli -->`; `render(name)` gives the same text to
tests. Nothing here is written by hand, so the reference stays true to the code it documents.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MARKER = re.compile(r"^<!-- generated: ([a-z-]+) -->$", re.MULTILINE)


def cli_reference() -> str:
    """Every `haystack-rl` command's `--help`, as the command prints it (plain text, 100 columns)."""
    from typer.testing import CliRunner

    from haystack_rl.cli import app

    runner = CliRunner()
    environment = {"TERMINAL_WIDTH": "100", "NO_COLOR": "1", "COLUMNS": "100"}
    names = [info.name for info in app.registered_commands if info.name]
    parts = []
    for name, arguments in [("haystack-rl", ["--help"]), *((name, [name, "--help"]) for name in names)]:
        result = runner.invoke(app, arguments, env=environment, prog_name="haystack-rl")
        if result.exit_code != 0:
            raise RuntimeError(f"docs: `haystack-rl {' '.join(arguments)}` failed: {result.output}")
        title = "`haystack-rl`" if name == "haystack-rl" else f"`haystack-rl {name}`"
        lines = [line.rstrip() for line in result.output.splitlines()]
        while lines and not lines[0]:
            lines.pop(0)
        help_text = "\n".join(lines).rstrip()
        parts.append(f"## {title}\n\n```text\n{help_text}\n```")
    return "\n\n".join(parts) + "\n"


def _cell(text: str) -> str:
    """Text for a markdown table cell (pipes escaped, one line)."""
    return " ".join(text.split()).replace("|", "\\|")


def train_config_reference() -> str:
    """Every key of a training config, by section, from `TrainConfig.model_json_schema()`."""
    from haystack_rl.training.config import TrainConfig

    schema = TrainConfig.model_json_schema()
    definitions = schema.get("$defs", {})
    top_rows: list[str] = []
    sections: list[str] = []
    for key, spec in schema["properties"].items():
        reference = spec.get("$ref")
        if reference:
            section = definitions[reference.rsplit("/", 1)[1]]
            rows = [_schema_row(f"{key}.{sub}", sub_spec) for sub, sub_spec in section["properties"].items()]
            sections.append(f"## `{key}`\n\n{_cell(section.get('description', ''))}\n\n{_schema_table(rows)}")
        else:
            top_rows.append(_schema_row(key, spec))
    return "\n\n".join([f"## Top level\n\n{_schema_table(top_rows)}", *sections]) + "\n"


def _schema_table(rows: list[str]) -> str:
    return "| key | type | default | description |\n|---|---|---|---|\n" + "\n".join(rows)


def _schema_row(key: str, spec: dict[str, Any]) -> str:
    default = f"`{json.dumps(spec['default'])}`" if "default" in spec else ""
    return f"| `{key}` | {_schema_type(spec)} | {default} | {_cell(spec.get('description', ''))} |"


def _schema_type(spec: dict[str, Any]) -> str:
    if "enum" in spec:
        return " \\| ".join(f"`{json.dumps(value)}`" for value in spec["enum"])
    if "anyOf" in spec:
        return " or ".join(_schema_type(option) for option in spec["anyOf"])
    kind = str(spec.get("type", "any"))
    if kind == "array":
        return f"list of {_schema_type(spec.get('items', {}))}"
    bounds = [f"{sign} {spec[name]}" for name, sign in
              (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="), ("exclusiveMaximum", "<"))
              if name in spec]  # fmt: skip
    return kind + (f" ({', '.join(bounds)})" if bounds else "")


def _without_title(path: Path) -> str:
    """A markdown file without its `# title` line (the page that includes it has its own)."""
    return re.sub(r"\A# [^\n]*\n+", "", path.read_text(encoding="utf-8"))


def bench_results() -> str:
    """`bench/README.md`, the source of every benchmark figure."""
    return _without_title(ROOT / "bench" / "README.md")


def changelog() -> str:
    """`CHANGELOG.md`, kept at the repository's root."""
    return _without_title(ROOT / "CHANGELOG.md")


GENERATORS: dict[str, Callable[[], str]] = {
    "cli": cli_reference,
    "train-config": train_config_reference,
    "bench": bench_results,
    "changelog": changelog,
}


def render(name: str) -> str:
    """The generated part called `name` (one of `GENERATORS`)."""
    if name not in GENERATORS:
        raise ValueError(f"docs: unknown generated part {name!r}; known: {', '.join(GENERATORS)}")
    return GENERATORS[name]()


def expand(markdown: str) -> str:
    """Replace every `<!-- generated: NAME -->` marker line of a page with its generated part."""
    return MARKER.sub(lambda match: render(match.group(1)), markdown)


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """The mkdocs hook (see `hooks:` in mkdocs.yml): expand the page's generated parts."""
    return expand(markdown)

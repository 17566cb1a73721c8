"""
Every code block of the README and the docs runs as a test, in the order a reader meets it.

The convention, per fenced block (the fence must name its language):

- `python`: written to a file and run with this interpreter; `bash`: run with `bash -e -o pipefail`, the project's
  `haystack-rl` and `python` first on the PATH. The blocks of one page run in order in one scratch directory (which
  links the repository's `pipelines/`, `configs/`, `examples/`, `bench/` and `tools/`), so a later block can use
  what an earlier one wrote.
- `yaml`, `toml`, `json`: parsed.
- `text`: output or a layout, not code; not run.
- `<!-- file: NAME -->` on the line above a block writes it to NAME in the scratch directory (a python block still
  runs); later blocks use the file as a reader would after saving it.
- `<!-- not-tested: REASON -->` on the line above a block skips it (training runs, servers, GPUs, installs); the
  reason is required.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
MARKER = re.compile(r"^<!-- (not-tested|file): ?(.*?) ?-->$")
ANY_MARKER = re.compile(r"<!-- (not-tested|file)\b")
RUN = ("python", "bash")
PARSERS = {"yaml": yaml.safe_load, "toml": tomllib.loads, "json": json.loads}
LANGUAGES = (*RUN, *PARSERS, "text")
LINKED = ("pipelines", "configs", "examples", "bench", "tools")
TIMEOUT_S = 300


@dataclass
class Block:
    """One fenced code block of a page, with the marker on the line above it (if any)."""

    page: Path
    line: int
    language: str
    code: str
    marker: str = ""
    value: str = ""

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks_of(page: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    blocks = []
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        above = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marker = MARKER.match(above)
        blocks.append(Block(page, line, match.group(1).strip(), match.group(2),
                            *(marker.groups() if marker else ())))  # fmt: skip
    return blocks


BLOCKS = {page: blocks_of(page) for page in PAGES}
RUNNABLE_PAGES = [page for page, blocks in BLOCKS.items() if any(b.language in RUN for b in blocks)]


def page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


def test_every_page_is_read() -> None:
    assert (ROOT / "README.md") in PAGES and len(PAGES) >= 20, [page_id(p) for p in PAGES]


def test_the_docs_run_code() -> None:
    runnable = [b for blocks in BLOCKS.values() for b in blocks if b.language in RUN and b.marker != "not-tested"]
    assert len(runnable) >= 25, f"only {len(runnable)} blocks run"
    assert any(b.page.name == "README.md" for b in runnable)


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_block_follows_the_convention(page: Path) -> None:
    problems = []
    for block in BLOCKS[page]:
        if block.language not in LANGUAGES:
            problems.append(f"{block.where}: fence language {block.language!r}; use one of {', '.join(LANGUAGES)}")
        if block.marker == "not-tested" and not block.value:
            problems.append(f"{block.where}: `<!-- not-tested: REASON -->` needs a reason")
        if block.marker == "file" and not re.fullmatch(r"[\w./-]+", block.value):
            problems.append(f"{block.where}: `<!-- file: NAME -->` needs a file name, got {block.value!r}")
    text = page.read_text(encoding="utf-8")
    marked = {b.line for b in BLOCKS[page] if b.marker}
    for number, line in enumerate(text.splitlines(), start=1):
        if ANY_MARKER.search(line) and number + 1 not in marked:
            problems.append(f"{page_id(page)}:{number}: a marker must be alone on the line right above a fence")
        if re.match(r"^\s+```", line):
            problems.append(f"{page_id(page)}:{number}: an indented fence is not tested; start fences at column 0")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("page", RUNNABLE_PAGES, ids=page_id)
def test_page_code_runs(page: Path, tmp_path: Path) -> None:
    for name in LINKED:
        (tmp_path / name).symlink_to(ROOT / name)
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "NO_COLOR": "1",
           "COLUMNS": "120", "PYTHONPATH": str(tmp_path)}  # fmt: skip
    for index, block in enumerate(BLOCKS[page]):
        if block.marker == "not-tested" or block.language == "text":
            continue
        if block.marker == "file":
            path = tmp_path / block.value
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(block.code, encoding="utf-8")
        if block.language in PARSERS:
            PARSERS[block.language](block.code)
            continue
        if block.language == "python":
            script = tmp_path / (block.value if block.marker == "file" else f"block_{index}.py")
            script.write_text(block.code, encoding="utf-8")
            command = [sys.executable, str(script)]
        else:
            command = ["bash", "-e", "-o", "pipefail", "-c", block.code]
        done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=TIMEOUT_S,
                              check=False)  # fmt: skip
        assert done.returncode == 0, (
            f"{block.where} ({block.language}) exited {done.returncode}:\n{block.code}\n"
            f"--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}"
        )


def test_the_link_check_finds_broken_files_and_anchors(tmp_path: Path) -> None:
    from tools.check_links import broken_links

    (tmp_path / "guide").mkdir()
    (tmp_path / "index.html").write_text(
        '<a href="guide/">ok</a><a href="guide/#setup">ok</a><a href="/guide/index.html">ok</a>'
        '<a href="https://example.org/x">external</a><a href="#top" id="top">self</a>'
        '<a href="missing.html">file</a><a href="guide/#nowhere">anchor</a><img src="../outside.png">'
    )
    (tmp_path / "guide" / "index.html").write_text('<h2 id="setup">Set-up</h2><a href="../index.html#top">up</a>')
    assert broken_links(tmp_path) == [
        "index.html: missing.html (no such file)",
        "index.html: guide/#nowhere (no #nowhere on that page)",
        "index.html: ../outside.png (points outside the site)",
    ]

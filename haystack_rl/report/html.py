"""Rendering page data into one self-contained HTML file: template, styles, script and chart library inlined."""

from __future__ import annotations

import html
import json
import math
import re
from functools import cache
from pathlib import Path
from typing import Any

ASSETS = Path(__file__).parent / "assets"
PLACEHOLDER = re.compile(r"\{\{(TITLE|UPLOT_CSS|REPORT_CSS|DATA|UPLOT_JS|REPORT_JS)\}\}")


def render_html(data: dict[str, Any]) -> str:
    """
    The report page for `page_data(...)`: no server, no network; the data rides in a JSON script block.

    Usage example:
    ```python
    from haystack_rl.report.html import render_html

    page = render_html({"title": "a </script> title", "generated_at": "", "sources": [], "sections": [],
                        "training": None, "comparisons": []})
    assert page.count("</script>") == 3 and "<title>a &lt;/script&gt; title</title>" in page
    ```
    """
    parts = {
        "TITLE": html.escape(str(data.get("title", "report"))),
        "UPLOT_CSS": _asset("uPlot.min.css"),
        "REPORT_CSS": _asset("report.css"),
        "DATA": embed_json(data),
        "UPLOT_JS": f"/*\n{_asset('uPlot.LICENSE')}*/\n{_script_safe(_asset('uPlot.iife.min.js'))}",
        "REPORT_JS": _script_safe(_asset("report.js")),
    }
    return PLACEHOLDER.sub(lambda match: parts[match.group(1)], _asset("page.html"))


def embed_json(data: Any) -> str:
    """
    JSON that is safe inside `<script type="application/json">`: `<`, `>` and `&` are written as `\\u003c`...
    (so no `</script>` or `<!--` can end the block), and NaN/infinity become null (JSON has neither).
    """
    try:
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=str)
    except ValueError:  # a NaN or an infinity somewhere: replace them, then dump again
        text = json.dumps(_finite(data), ensure_ascii=False, separators=(",", ":"), default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _script_safe(code: str) -> str:
    """Script text that cannot close its own `<script>` element early."""
    return re.sub(r"</(script)", r"<\\/\1", code, flags=re.IGNORECASE)


@cache
def _asset(name: str) -> str:
    return (ASSETS / name).read_text(encoding="utf-8")

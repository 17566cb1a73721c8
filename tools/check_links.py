"""
Check every internal link of a built docs site: each `href`/`src` that points inside the site must name a file
that exists, and a `#fragment` must name an `id` on the page it points to. External links are not fetched.

Usage: python tools/check_links.py [SITE_DIR]   (default: site/; exit code 1 and one line per broken link)
"""

from __future__ import annotations

import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

LINK_ATTRIBUTES = {"href", "src"}
SKIPPED_FILES = ("sitemap.xml",)


class _Page(HTMLParser):
    """The ids a page defines and the links it holds."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name == "id" or (tag == "a" and name == "name"):
                self.ids.add(value)
            elif name in LINK_ATTRIBUTES:
                self.links.append(value)


def _read(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8", errors="replace"))
    return page


def broken_links(site: Path) -> list[str]:
    """Every broken internal link of the site under `site`, as `page: link (why)`."""
    site = site.resolve()
    pages = {path: _read(path) for path in sorted(site.rglob("*.html"))}
    problems = []
    for path, page in pages.items():
        for link in page.links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or link.startswith(("mailto:", "javascript:", "data:")):
                continue  # external: not fetched
            if not parts.path:
                target = path
            elif parts.path.startswith("/"):  # site-root relative (mkdocs' 404 page)
                target = (site / unquote(parts.path).lstrip("/")).resolve()
            else:
                target = (path.parent / unquote(parts.path)).resolve()
            if parts.path.endswith("/") or target.is_dir():
                target = target / "index.html"
            where = f"{path.relative_to(site)}: {link}"
            if target.name in SKIPPED_FILES:
                continue
            if site not in target.parents and target != site:
                problems.append(f"{where} (points outside the site)")
            elif not target.exists():
                problems.append(f"{where} (no such file)")
            elif parts.fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else _read(target).ids
                if unquote(parts.fragment) not in ids:
                    problems.append(f"{where} (no #{parts.fragment} on that page)")
    return problems


def main() -> None:
    site = Path(sys.argv[1] if len(sys.argv) > 1 else "site")
    if not (site / "index.html").exists():
        sys.exit(f"check_links: {site}/index.html not found; build the site first (mkdocs build)")
    problems = broken_links(site)
    pages = sum(1 for _ in site.rglob("*.html"))
    for line in problems:
        print(f"broken link: {line}")
    print(f"check_links: {pages} pages, {len(problems)} broken internal links")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()

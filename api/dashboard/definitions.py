"""The KPI definitions every dashboard number links to: docs/reporting.md, served.

docs/ is not in the package, so ``linkway docs`` copies docs/reporting.md beside this
module (``definitions.md``, package data) and ``linkway docs --check`` fails when the
copy differs, like the other generated documents. The page is rendered with markdown-it-py
(raw HTML off), and each heading gets the id GitHub gives it, so
``/dashboard/definitions#stage-funnel`` and ``docs/reporting.md#stage-funnel`` are the
same place.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from pathlib import Path

from markdown_it import MarkdownIt

SOURCE = Path("docs") / "reporting.md"
PACKAGED = Path("api") / "dashboard" / "definitions.md"


def slug(heading: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    return {slug(line.lstrip("#")) for line in markdown.splitlines() if line.startswith("#")}


def packaged_text() -> str:
    return resources.files("api.dashboard").joinpath("definitions.md").read_text("utf-8")


@cache
def render() -> str:
    """The definitions as an HTML fragment (trusted text: our own docs)."""
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    tokens = md.parse(packaged_text())
    for i, token in enumerate(tokens):
        if token.type == "heading_open":
            token.attrSet("id", slug(tokens[i + 1].content))
    return str(md.renderer.render(tokens, md.options, {}))


def write(root: Path) -> list[Path]:
    target = root / PACKAGED
    text = (root / SOURCE).read_text("utf-8")
    if not target.exists() or target.read_text("utf-8") != text:
        target.write_text(text, "utf-8")
        return [target]
    return []


def check(root: Path) -> list[Path]:
    target = root / PACKAGED
    same = target.exists() and target.read_text("utf-8") == (root / SOURCE).read_text("utf-8")
    return [] if same else [target]

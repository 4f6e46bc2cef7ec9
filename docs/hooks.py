"""MkDocs hooks: pages whose content is generated from the code, so that the site cannot drift from it.

``<!-- glossary -->`` in a page becomes the table of :data:`probzoo.glossary.COLUMNS`, and the home page
``<!-- readme: ... -->`` the README itself (its links into ``docs/`` made relative), so that the README and
the site's home page are one text.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _glossary() -> str:
    from probzoo.glossary import COLUMNS

    lines = ["| quantity | meaning | better |", "| --- | --- | --- |"]
    for name, col in COLUMNS.items():
        lines.append(f"| `{name}` | {col.meaning.replace('|', '&#124;')} | {col.better or ''} |")
    return "\n".join(lines)


def on_page_markdown(markdown: str, **kwargs) -> str:
    # Sphinx roles in docstrings (:class:`X`, :func:`f`) read as code in the rendered pages
    markdown = re.sub(r":(?:class|func|meth|data|attr|mod):`~?([^`]+)`", r"`\1`", markdown)
    if markdown.startswith("<!-- readme"):
        markdown = (ROOT / "README.md").read_text().replace("](docs/", "](")
    return markdown.replace("<!-- glossary -->", _glossary())

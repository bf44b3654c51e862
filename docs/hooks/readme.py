"""mkdocs hook: the site's home page is the README, with its links into docs/ made relative to the site.

The README is the one place the guide is written; ``docs/index.md`` only marks where it goes.
"""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def on_page_markdown(markdown: str, page, config, files) -> str:
    if page.file.src_uri != "index.md":
        return markdown
    text = README.read_text(encoding="utf-8")
    return re.sub(r"\]\(docs/", "](", text)

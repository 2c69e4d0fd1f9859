"""Pages of the Snakemake report (`make report`, workflow/rules/report.smk).

Snakemake's HTML report shows images and HTML pages (HTML in an iframe) and offers anything else,
Markdown and JSON included, only as a download. The tables are therefore rendered to standalone HTML
pages from their Markdown files (the same text as tables/*.md: the pipe table and its notes), and
provenance.json to a two-column page. Pages are self-contained (inline style, no script, no
external resource), so the report opens offline.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from hashee.core.errors import HasheeError
from hashee.core.io import write_text_atomic

_STYLE = """
body { font-family: system-ui, sans-serif; font-size: 14px; margin: 1.5em; color: #1f2328; }
h1 { font-size: 1.3em; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #d0d7de; padding: 0.3em 0.6em; vertical-align: top; }
th { background: #f6f8fa; }
tbody tr:nth-child(even) { background: #fafbfc; }
td.key { font-family: ui-monospace, monospace; white-space: nowrap; }
ul { max-width: 60em; }
"""


def _page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{html.escape(title)}</title>\n'
            f"<style>{_STYLE}</style>\n</head>\n<body>\n<h1>{html.escape(title)}</h1>\n{body}</body>\n</html>\n")


def table_page(markdown: str, title: str) -> str:
    """A Markdown table file (pipe table, then its notes as a list) as one HTML page."""
    from markdown_it import MarkdownIt

    # commonmark with tables; raw HTML in a cell is shown as text, never interpreted
    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown)
    if "<table>" not in body:
        raise HasheeError(f"{title}: no Markdown table found")
    return _page(title, body)


def _flatten(value, prefix: str = ""):
    if isinstance(value, dict) and value:
        for key, item in value.items():
            yield from _flatten(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list) and value and any(isinstance(item, (dict, list)) for item in value):
        for i, item in enumerate(value):
            yield from _flatten(item, f"{prefix}[{i}]")
    else:
        yield prefix, value


def provenance_page(record: dict, title: str) -> str:
    """A provenance record (hashee.measure.provenance) as a table of dotted keys and values."""
    rows = "".join(f'<tr><td class="key">{html.escape(key)}</td><td>{html.escape(_text(value))}</td></tr>\n'
                   for key, value in _flatten(record))
    return _page(title, f"<table>\n<thead><tr><th>key</th><th>value</th></tr></thead>\n<tbody>\n{rows}</tbody>\n</table>\n")


def _text(value) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def write_page(source, out, title: str | None = None) -> Path:
    """`source` (a table's .md, or provenance .json) as an HTML page at `out`, written atomically."""
    source, out = Path(source), Path(out)
    title = title or source.stem.replace("_", " ")
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise HasheeError(f"{source}: cannot read ({err})") from None
    if source.suffix == ".md":
        page = table_page(text, title)
    elif source.suffix == ".json":
        try:
            record = json.loads(text)
        except json.JSONDecodeError as err:
            raise HasheeError(f"{source}:{err.lineno}: not valid JSON ({err.msg})") from None
        if not isinstance(record, dict):
            raise HasheeError(f"{source}: expected a JSON object")
        page = provenance_page(record, title)
    else:
        raise HasheeError(f"{source}: expected a table's .md or a provenance .json")
    write_text_atomic(out, page)
    return out


__all__ = ["provenance_page", "table_page", "write_page"]

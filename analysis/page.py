"""The report as one HTML page: styles inline, figures beside it in its folder, linked relatively."""

from __future__ import annotations

from html import escape
from pathlib import Path

from analysis.artifacts import Artifact
from analysis.content import Document, Note, Table
from analysis.writeup import link

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1400px; margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
nav a { margin-right: 1em; }
ul.summary li { margin-bottom: .4em; }
table { border-collapse: collapse; font-size: .8em; margin: 1em 0; display: block; overflow-x: auto; }
th, td { border: 1px solid #ccc; padding: .3em .5em; text-align: right; }
td { white-space: nowrap; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
figure { margin: 1.5em 0; } figure img, figure video { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption, .caption { font-size: .9em; color: #555; }
.note { background: #fff8e1; border-left: 4px solid #f0c36d; padding: .5em 1em; }
"""


def _table(table: Table) -> str:
    head = "".join(f"<th>{escape(header)}</th>" for header in table.headers)
    body = "".join("<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in table.rows)
    return f'<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>\n<p class="caption">{escape(table.caption)}</p>'


def _figure(artifact: Artifact, folder: Path) -> str:
    source, caption = escape(link(artifact.path, folder)), escape(artifact.caption)
    if artifact.is_video:
        shown = f'<video src="{source}" controls loop muted playsinline></video>'
    else:
        shown = f'<img src="{source}" alt="{caption}">'
    return f"<figure>{shown}<figcaption>{caption}</figcaption></figure>"


def _summary_item(sentence: str) -> str:
    """A summary sentence; its only markup, a leading **bold** phrase, becomes <strong>."""
    if sentence.startswith("**") and "**" in sentence[2:]:
        bold, rest = sentence[2:].split("**", 1)
        return f"<li><strong>{escape(bold)}</strong>{escape(rest)}</li>"
    return f"<li>{escape(sentence)}</li>"


def html(document: Document, folder: Path) -> str:
    """The whole index.html."""
    sections = document.sections()
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(document.title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{escape(document.title)}</h1>",
        "<nav>" + "".join(f'<a href="#{_anchor(s)}">{escape(s)}</a>' for s in sections) + "</nav>",
        '<ul class="summary">' + "".join(_summary_item(sentence) for sentence in document.summary) + "</ul>",
    ]
    for section in sections:
        parts.append(f'<h2 id="{_anchor(section)}">{escape(section)}</h2>')
        for item in document.section(section):
            if isinstance(item, Table):
                parts.append(_table(item))
            elif isinstance(item, Note):
                parts.append(f'<p class="note">{escape(item.text)}</p>')
            else:
                parts.append(_figure(item, folder))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _anchor(section: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in section.lower())

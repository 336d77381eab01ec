"""Tables as small standalone HTML pages: the Snakemake report shows ``.html`` results inline
(Markdown and CSV would only be offered for download)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape

# Scoped to the page's own <div>, so that the page can also be embedded (the report's front page).
_STYLE = (
    ".lsmia-table{font-family:system-ui,sans-serif;font-size:14px;margin:1em 0}"
    ".lsmia-table table{border-collapse:collapse}"
    ".lsmia-table th,.lsmia-table td{padding:.25em .6em;border-bottom:1px solid #ddd;text-align:left}"
    ".lsmia-table th{border-bottom:2px solid #444}.lsmia-table .num{text-align:right}"
    ".lsmia-table caption{font-weight:bold;text-align:left;margin-bottom:.5em}"
)


def table_html(
    headers: Sequence[str],
    rows: Iterable[Sequence[str]],
    numeric: Sequence[bool],
    caption: str = "",
    before: Sequence[str] = (),
    notes: Sequence[str] = (),
) -> str:
    """One HTML page: paragraphs ``before``, the table (numeric columns right-aligned) with its
    ``caption``, then ``notes`` as a list. Every text is escaped."""

    def cells(tag, values):
        classes = [' class="num"' if num else "" for num in numeric]
        return "".join(f"<{tag}{c}>{escape(str(v))}</{tag}>" for v, c in zip(values, classes))

    body = [f"<p>{escape(p)}</p>" for p in before]
    body.append("<table>")
    if caption:
        body.append(f"<caption>{escape(caption)}</caption>")
    body.append(f"<thead><tr>{cells('th', headers)}</tr></thead><tbody>")
    body += [f"<tr>{cells('td', row)}</tr>" for row in rows]
    body.append("</tbody></table>")
    if notes:
        body.append("<ul>" + "".join(f"<li>{escape(n)}</li>" for n in notes) + "</ul>")
    content = "\n".join(body)
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head><body>\n'
        f'<div class="lsmia-table"><style>{_STYLE}</style>\n{content}\n</div>\n</body></html>\n'
    )

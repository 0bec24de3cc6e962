"""Small HTML building blocks shared by the run page and the sweep page.

Pages are one self-contained file: styles inline, pictures inline SVG (or
data: URIs), no script, nothing fetched from the network, so a page opens
the same from a CI artifact store, a mail attachment or a laptop offline.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1f2328;background:#fff}
header{padding:14px 24px;border-bottom:1px solid #d0d7de;background:#f6f8fa}
header h1{margin:0 0 4px;font-size:20px}
main{padding:8px 24px 40px;max-width:1400px}
h2{font-size:16px;margin:28px 0 8px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
table{border-collapse:collapse;margin:6px 0;font-size:13px}
th,td{border:1px solid #d0d7de;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa}
td.num{text-align:right;font-variant-numeric:tabular-nums}
td.wrap{max-width:640px;white-space:pre-wrap;word-break:normal;overflow-wrap:anywhere}
.badge{display:inline-block;padding:2px 10px;border-radius:12px;font-weight:600;color:#fff}
.pass{background:#1a7f37}.fail{background:#cf222e}.broken{background:#8250df}.interrupted{background:#bc4c00}
.not-run{background:#6e7781}.cut-short{background:#bc4c00}.reached{background:#1a7f37}.missed{background:#cf222e}
span.result{font-weight:600}span.result.pass{color:#1a7f37;background:none}span.result.fail{color:#cf222e;background:none}
span.result.not-run{color:#6e7781;background:none}
figure{margin:10px 0 18px}figure svg{max-width:100%;height:auto}
figcaption{font-size:12px;color:#57606a}
pre{background:#f6f8fa;padding:8px;border:1px solid #d0d7de;white-space:pre-wrap;overflow-wrap:anywhere}
dl{display:grid;grid-template-columns:max-content auto;gap:2px 14px;font-size:13px}dt{color:#57606a}dd{margin:0}
.thumbs{display:flex;flex-wrap:wrap;gap:8px}.thumbs figure{margin:0}.thumbs img{width:200px;border:1px solid #d0d7de}
.note{color:#57606a;font-size:13px}
"""


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def css_class(text: str) -> str:
    return text.lower().replace(" ", "-")


def badge(text: str, cls: str | None = None) -> str:
    return f'<span class="badge {css_class(cls or text)}">{esc(text)}</span>'


def table(header: Sequence[str], rows: Iterable[Sequence[str]], table_id: str, raw: bool = False) -> str:
    """An HTML table; cells are escaped unless ``raw`` (already HTML). A cell given as
    ``(html, css_class)`` gets that class."""
    out = [f'<table id="{esc(table_id)}"><thead><tr>', *(f"<th>{esc(h)}</th>" for h in header), "</tr></thead><tbody>"]
    for row in rows:
        out.append("<tr>")
        for cell in row:
            text, cls = cell if isinstance(cell, tuple) else (cell, "")
            body = text if raw else esc(text)
            out.append(f'<td class="{cls}">{body}</td>' if cls else f"<td>{body}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def definitions(items: Iterable[tuple[str, object]], list_id: str) -> str:
    body = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in items)
    return f'<dl id="{esc(list_id)}">{body}</dl>'


def figure(svg: str, caption: str, figure_id: str) -> str:
    return f'<figure id="{esc(figure_id)}" class="plot">{svg}<figcaption>{esc(caption)}</figcaption></figure>'


def page(title: str, header_html: str, body: str) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{esc(title)}</title>"
            f"<style>{STYLE}</style></head><body><header>{header_html}</header><main>{body}</main></body></html>\n")

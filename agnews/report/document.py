"""A tiny document model and its two renderings: Markdown (GitHub) and self-contained HTML.

The report is built once as a list of blocks and rendered twice, so `report.md` and
`report.html` cannot say different things. The HTML inlines its images as data URIs and
its CSS, needs no JavaScript and fetches nothing, so it opens the same in a browser and in
MLflow's artifact viewer.
"""
from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Para:
    text: str


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]


@dataclass
class Code:
    text: str


@dataclass
class Image:
    name: str  # file name, e.g. "loss_curves.png"
    caption: str
    data: bytes = field(repr=False)


Block = Heading | Para | Bullets | Table | Code | Image


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def to_markdown(blocks: list[Block], image_dir: str = "img") -> str:
    """Markdown with images referenced as `<image_dir>/<name>` (logged beside the report)."""
    out: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            out.append(f"{'#' * b.level} {b.text}")
        elif isinstance(b, Para):
            out.append(b.text)
        elif isinstance(b, Bullets):
            out.append("\n".join(f"- {item}" for item in b.items))
        elif isinstance(b, Table):
            lines = ["| " + " | ".join(map(_md_cell, b.header)) + " |",
                     "|" + "---|" * len(b.header)]
            lines += ["| " + " | ".join(map(_md_cell, row)) + " |" for row in b.rows]
            out.append("\n".join(lines))
        elif isinstance(b, Code):
            out.append(f"```\n{b.text}\n```")
        elif isinstance(b, Image):
            out.append(f"![{b.caption}]({image_dir}/{b.name})\n\n*{b.caption}*")
    return "\n\n".join(out) + "\n"


_CSS = """body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:980px;
margin:2em auto;padding:0 1em;color:#222;line-height:1.5}h1{border-bottom:2px solid #ddd}
h2{margin-top:1.8em;border-bottom:1px solid #eee}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:4px 10px;text-align:left}th{background:#f4f4f4}
figure{margin:1em 0}img{max-width:100%;height:auto}figcaption{color:#555;font-size:.9em}
pre{background:#f6f8fa;padding:1em;overflow-x:auto;white-space:pre-wrap}"""


def to_html(blocks: list[Block], title: str) -> str:
    esc = html.escape
    out = [f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
           f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>"]
    for b in blocks:
        if isinstance(b, Heading):
            out.append(f"<h{b.level}>{esc(b.text)}</h{b.level}>")
        elif isinstance(b, Para):
            out.append(f"<p>{esc(b.text)}</p>")
        elif isinstance(b, Bullets):
            out.append("<ul>" + "".join(f"<li>{esc(i)}</li>" for i in b.items) + "</ul>")
        elif isinstance(b, Table):
            head = "".join(f"<th>{esc(str(h))}</th>" for h in b.header)
            body = "".join("<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in row) + "</tr>"
                           for row in b.rows)
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif isinstance(b, Code):
            out.append(f"<pre><code>{esc(b.text)}</code></pre>")
        elif isinstance(b, Image):
            src = "data:image/png;base64," + base64.b64encode(b.data).decode("ascii")
            out.append(f"<figure><img src=\"{src}\" alt=\"{esc(b.caption)}\">"
                       f"<figcaption>{esc(b.caption)}</figcaption></figure>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def write_report(blocks, folder: Path, title: str) -> None:
    """report.md with its images in img/, and the self-contained report.html."""
    (folder / "img").mkdir(parents=True, exist_ok=True)
    for block in blocks:
        if isinstance(block, Image):
            (folder / "img" / block.name).write_bytes(block.data)
    (folder / "report.md").write_text(to_markdown(blocks), encoding="utf-8")
    (folder / "report.html").write_text(to_html(blocks, title), encoding="utf-8")

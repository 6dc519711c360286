"""Write the tables as Markdown, a self-contained HTML page and a long-format CSV."""

from __future__ import annotations

import base64
import csv
import html
import io
from pathlib import Path

from langadapt_tasks.report.tables import Cell, Table


def fmt(cell: Cell, kind: str, signed: bool = False) -> str:
    if cell.value is None:
        return cell.text or "–"
    if kind == "count":
        text = f"{cell.value:.0f}"
    else:
        factor, digits = {"pct": (100, 1), "pct2": (100, 2), "bpb": (1, 3)}.get(kind, (1, 2))
        sign = "+" if signed else ""
        text = f"{factor * cell.value:{sign}.{digits}f}"
        if cell.stderr is not None:
            text += f" ± {factor * cell.stderr:.{digits}f}"
    return f"{text} ({cell.note})" if cell.note else text


def _heading(table: Table) -> str:
    title = table.title
    if table.scale:
        title += f" — judge scale {table.scale[0]:g}–{table.scale[1]:g}"
    return title


def _shown(table: Table, name: str, cells: list[Cell]) -> list[str]:
    kinds = enumerate(zip(cells, table.kinds, strict=True))
    return [fmt(c, k, table.signed(name, i)) for i, (c, k) in kinds]


def markdown_table(table: Table) -> str:
    lines = [
        f"| model | {' | '.join(table.columns)} |",
        "|---|" + "---|" * len(table.columns),
    ]
    for name, cells in table.rows.items():
        shown = _shown(table, name, cells)
        lines.append(f"| {name} | {' | '.join(shown)} |")
    return "\n".join(lines)


def markdown(
    title: str,
    sections: list[tuple[str, list[Table]]],
    charts: list[Path],
    notes: list[str],
    runs: list[str],
) -> str:
    out = [f"# {title}", "", "## Models", ""]
    out += [f"- {r}" for r in runs] + [""]
    for heading, tables in sections:
        out += [f"## {heading}", ""]
        for table in tables:
            out += [f"### {_heading(table)}", "", markdown_table(table), ""]
            out += [f"- {n}" for n in table.notes]
            out += [""] if table.notes else []
    if charts:
        out += ["## Charts", ""]
        out += [f"![{p.stem}]({p.name})" for p in charts]
        out += [""]
    if notes:
        out += ["## Inputs not used or ambiguous", ""]
        out += [f"- {n}" for n in notes]
        out += [""]
    return "\n".join(out)


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1em}th,td{border:1px solid #ccc;padding:.25em .6em}
td{text-align:right}td:first-child,th:first-child{text-align:left}th{background:#f3f3f3}
.note{color:#555;font-size:.9em}img{max-width:100%;display:block;margin:1em 0}
"""


def html_page(
    title: str,
    sections: list[tuple[str, list[Table]]],
    charts: list[Path],
    notes: list[str],
    runs: list[str],
) -> str:
    """One HTML file; the charts are embedded as data URIs."""
    e = html.escape
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        "<h2>Models</h2><ul>",
        *[f"<li>{e(r)}</li>" for r in runs],
        "</ul>",
    ]
    for heading, tables in sections:
        out.append(f"<h2>{e(heading)}</h2>")
        for table in tables:
            out.append(f"<h3>{e(_heading(table))}</h3><table><tr><th>model</th>")
            out += [f"<th>{e(c)}</th>" for c in table.columns]
            out.append("</tr>")
            for name, cells in table.rows.items():
                shown = _shown(table, name, cells)
                out.append(
                    f"<tr><td>{e(name)}</td>" + "".join(f"<td>{e(s)}</td>" for s in shown) + "</tr>"
                )
            out.append("</table>")
            out += [f'<p class="note">{e(n)}</p>' for n in table.notes]
    if charts:
        out.append("<h2>Charts</h2>")
        for path in charts:
            data = base64.b64encode(path.read_bytes()).decode()
            out.append(f'<img alt="{e(path.stem)}" src="data:image/png;base64,{data}">')
    if notes:
        out.append("<h2>Inputs not used or ambiguous</h2><ul>")
        out += [f"<li>{e(n)}</li>" for n in notes]
        out.append("</ul>")
    out.append("</body></html>")
    return "\n".join(out)


def csv_text(tables: list[Table]) -> str:
    """Long format: one row per table, model and column."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["table", "model", "column", "value", "stderr", "note", "scale"])
    for table in tables:
        scale = f"{table.scale[0]:g}-{table.scale[1]:g}" if table.scale else ""
        for name, cells in table.rows.items():
            for column, cell in zip(table.columns, cells, strict=True):
                writer.writerow(
                    [
                        table.key,
                        name,
                        column,
                        "" if cell.value is None else repr(cell.value),
                        "" if cell.stderr is None else repr(cell.stderr),
                        cell.note,
                        scale,
                    ]
                )
    return buf.getvalue()

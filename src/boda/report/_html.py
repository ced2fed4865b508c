"""The self-contained HTML report of a scan.

One file, no external assets (thumbnails are embedded as data URIs, the
histograms are inline SVG), so it can be mailed or opened from anywhere.
Sections: a summary, one section per flag sorted from the worst image down,
duplicate groups side by side, score histograms with their thresholds, and the
files that could not be read with the reason.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as _dt
import html
import math
import operator
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from boda import __version__
from boda.catalog import Catalog, ImageRecord
from boda.core.text import printable
from boda.io import prepare_output, write_output

__all__ = ["render_html", "write_html_report", "MAX_PER_SECTION"]

#: Scores that flag nothing but are worth seeing across a folder.
_DESCRIPTIVE_SCORES = ("colorfulness", "mean_L", "std_L", "edge_density", "contrast")

#: Thumbnails shown per flag section; the rest are counted and left to --json/--csv.
MAX_PER_SECTION = 300

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d2329;background:#f6f7f9}
header{background:#1d2329;color:#fff;padding:18px 28px}header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;color:#b8c0c8}main{padding:12px 28px 40px;max-width:1400px}
nav a{margin-right:14px}h2{margin-top:34px;border-bottom:2px solid #dde1e6;padding-bottom:4px}
.cards{display:flex;flex-wrap:wrap;gap:10px}.stat{background:#fff;border-radius:8px;
padding:10px 16px;box-shadow:0 1px 2px #0002;min-width:110px}.stat b{display:block;font-size:22px}
.grid{display:flex;flex-wrap:wrap;gap:10px}.card{background:#fff;border-radius:6px;
box-shadow:0 1px 2px #0002;width:210px;overflow:hidden}.card img{width:210px;height:150px;
object-fit:contain;background:#e9ecef;display:block}.card div{padding:6px 8px;font-size:12px;
word-break:break-all}.score{color:#a5300f;font-weight:600;white-space:nowrap}.group{background:#fff;
border-radius:8px;padding:8px;margin:10px 0;box-shadow:0 1px 2px #0002}
.group .grid{gap:6px}table{border-collapse:collapse;background:#fff}td,th{padding:5px 10px;
border-bottom:1px solid #e3e6ea;text-align:left;vertical-align:top}.muted{color:#6b7580}
.hists{display:flex;flex-wrap:wrap;gap:14px}.hist{background:#fff;border-radius:6px;padding:8px;
box-shadow:0 1px 2px #0002}.card .swatches{display:flex;height:10px;padding:0}
.swatches span{display:block;height:10px}
"""


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _thumb(record: ImageRecord) -> str:
    if not record.thumbnail:
        return '<img alt="no thumbnail">'
    data = base64.b64encode(record.thumbnail).decode("ascii")
    return f'<img loading="lazy" alt="{_esc(record.path)}" src="data:image/jpeg;base64,{data}">'


def _swatches(record: ImageRecord) -> str:
    """The dominant colours as a strip, each as wide as its share of the image."""
    colors = record.extra.get("dominant_colors") or []
    spans = "".join(
        f'<span title="{_hex(c["rgb"])} · {100 * c["fraction"]:.0f}%" '
        f'style="flex:{c["fraction"]:.4f};background:{_hex(c["rgb"])}"></span>'
        for c in colors
    )
    return f'<div class="swatches">{spans}</div>' if spans else ""


def _hex(rgb: list[float]) -> str:
    return "#" + "".join(f"{round(min(max(v, 0.0), 1.0) * 255):02x}" for v in rgb)


def _card(record: ImageRecord, score_text: str = "") -> str:
    size = f"{record.width}×{record.height}" if record.width else ""
    score = f' <span class="score">{_esc(score_text)}</span>' if score_text else ""
    return (
        f'<div class="card">{_thumb(record)}{_swatches(record)}<div>{_esc(record.path)}<br>'
        f'<span class="muted">{size}</span>{score}</div></div>'
    )


def _histogram_svg(values: list[float], threshold: float | None, title: str) -> str:
    """A small inline-SVG histogram with the threshold drawn as a red line."""
    width, height, bins = 300, 120, 30
    arr = np.asarray([v for v in values if v is not None and math.isfinite(v)], float)
    if arr.size == 0:
        return ""
    lo, hi = float(arr.min()), float(arr.max())
    if threshold is not None and math.isfinite(threshold):
        lo, hi = min(lo, threshold), max(hi, threshold)
    if hi <= lo:
        hi = lo + 1.0
    counts, edges = np.histogram(arr, bins=bins, range=(lo, hi))
    top = max(int(counts.max()), 1)
    bar_w = (width - 20) / bins
    bars = "".join(
        f'<rect x="{10 + i * bar_w:.1f}" y="{100 - 90 * c / top:.1f}" '
        f'width="{bar_w - 1:.1f}" height="{90 * c / top:.1f}" fill="#4b7bb5"/>'
        for i, c in enumerate(counts)
    )
    line = ""
    if threshold is not None and math.isfinite(threshold):
        x = 10 + (threshold - lo) / (hi - lo) * (width - 20)
        line = (
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="5" y2="100" '
            'stroke="#c0392b" stroke-width="2"/>'
        )
    return (
        f'<div class="hist"><b>{_esc(title)}</b><br><svg width="{width}" height="{height}" '
        f'role="img" aria-label="histogram of {_esc(title)}">{bars}{line}'
        f'<text x="10" y="115" font-size="11">{lo:.3g}</text>'
        f'<text x="{width - 10}" y="115" font-size="11" text-anchor="end">{hi:.3g}</text>'
        "</svg></div>"
    )


@dataclasses.dataclass(frozen=True, slots=True)
class _Flagged:
    """What choosing a flag section's cards needs of a flagged image."""

    id: int
    path: str
    score: float | None
    group: int | None


def render_html(catalog_path: str | Path, *, title: str | None = None) -> str:
    """Render the report of the catalog at ``catalog_path`` as an HTML string.

    The catalog is read in one pass that keeps only counts, the scores for
    the histograms and what picks each section's cards; the full records (and
    thumbnails) are then read for the cards shown, at most
    :data:`MAX_PER_SECTION` a section, so memory does not grow with the
    folder's full records.
    """
    from boda.scan._flags import _rules, describe_rules, flag_descriptions
    from boda.scan._walk import describe_raw_files

    rules = {rule.name: rule for rule in _rules()}
    score_keys = list(dict.fromkeys([r.score_key for r in rules.values()] + [*_DESCRIPTIVE_SCORES]))
    n_files = n_ok = 0
    failed: list[tuple[str, str | None]] = []
    by_flag: dict[str, list[_Flagged]] = defaultdict(list)
    values: dict[str, list[float | None]] = {key: [] for key in score_keys}
    with Catalog(catalog_path, readonly=True) as catalog:
        for r in catalog.records():
            n_files += 1
            if r.status == "error":
                failed.append((r.path, r.error))
                continue
            if r.status != "ok":
                continue
            n_ok += 1
            for key in score_keys:
                values[key].append(r.scores.get(key))
            for name, (score, group) in r.flags.items():
                by_flag[name].append(_Flagged(r.id, r.path, score, group))
        thresholds = catalog.get_setting("thresholds", {}) or {}
        raw_files = catalog.get_setting("raw_files", {}) or {}
        shown_ids = {name: _shown(members, name, rules) for name, members in by_flag.items()}
        records = catalog.records_by_id(
            {i for ids in shown_ids.values() for i in ids}, with_thumbnails=True
        )
    shown = {name: [records[i] for i in ids] for name, ids in shown_ids.items()}
    descriptions = flag_descriptions()
    rule_text = describe_rules(thresholds) if thresholds else {}

    title = title or report_title(Path(catalog_path).resolve().parent.parent)
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>",
        f"<header><h1>{_esc(title)}</h1><p>{n_files} files · {n_ok} analysed · "
        f"{len(failed)} unreadable · boda {__version__} · "
        f"{_dt.datetime.now().strftime('%Y-%m-%d %H:%M')}</p></header><main>",
    ]
    flag_names = [name for name in descriptions if name in by_flag]
    nav = " ".join(f'<a href="#flag-{n}">{n} ({len(by_flag[n])})</a>' for n in flag_names)
    parts.append(
        f"<nav>{nav} <a href='#histograms'>histograms</a> "
        f"<a href='#failures'>unreadable ({len(failed)})</a></nav>"
    )
    cards = [f'<div class="stat"><b>{n_ok}</b>analysed</div>',
             f'<div class="stat"><b>{len(failed)}</b>unreadable</div>']
    cards += [
        f'<div class="stat"><b>{len(by_flag.get(n, []))}</b>{_esc(n)}</div>' for n in descriptions
    ]
    parts.append(f'<h2>Summary</h2><div class="cards">{"".join(cards)}</div>')
    if rule_text:
        rows = "".join(
            f"<tr><td>{_esc(n)}</td><td>{_esc(descriptions.get(n, ''))}</td>"
            f"<td><code>{_esc(rule_text.get(n, ''))}</code></td></tr>"
            for n in descriptions
        )
        parts.append(
            "<details><summary>Flag rules and thresholds</summary><table><tr><th>flag</th>"
            f"<th>meaning</th><th>rule</th></tr>{rows}</table></details>"
        )

    for name in flag_names:
        members, cards = by_flag[name], shown[name]
        parts.append(
            f'<h2 id="flag-{name}">{_esc(name)} <span class="muted">({len(members)})</span></h2>'
            f'<p class="muted">{_esc(descriptions[name])}</p>'
        )
        if name in ("exact_duplicate", "near_duplicate"):
            parts.append(_duplicate_groups(cards, name))
        else:
            key = rules[name].score_key
            parts.append(
                '<div class="grid">'
                + "".join(_card(r, f"{key} {r.flags[name][0]:.3g}") for r in cards)
                + "</div>"
            )
        if len(members) > len(cards):
            parts.append(
                f'<p class="muted">… and {len(members) - len(cards)} more: '
                "see <code>boda report DIR --json</code> or <code>--csv</code>.</p>"
            )

    parts.append(
        '<h2 id="histograms">Score histograms</h2><p class="muted">Images per score bin, '
        "from the lowest score to the highest; the red line is the flag's threshold.</p>"
        '<div class="hists">'
    )
    for name, rule in rules.items():
        key = rule.score_key
        parts.append(_histogram_svg(values[key], thresholds.get(name), f"{key} ({name})"))
    for key in _DESCRIPTIVE_SCORES:
        parts.append(_histogram_svg(values[key], None, key))
    parts.append("</div>")

    parts.append(f'<h2 id="failures">Unreadable files ({len(failed)})</h2>')
    if failed:
        rows = "".join(
            f"<tr><td>{_esc(path)}</td><td>{_esc(error)}</td></tr>" for path, error in failed
        )
        parts.append(f"<table><tr><th>file</th><th>reason</th></tr>{rows}</table>")
    else:
        parts.append('<p class="muted">Every file could be read.</p>')
    if raw_files:
        parts.append(f"<p>Not scanned: {_esc(describe_raw_files(raw_files))}.</p>")
    parts.append("</main></body></html>")
    return "\n".join(parts)


def _shown(members: list[_Flagged], name: str, rules: dict) -> list[int]:
    """Ids of the cards a flag section shows: at most ``MAX_PER_SECTION``, the
    worst first; for duplicates, whole groups in group order until the cap."""
    if name in ("exact_duplicate", "near_duplicate"):
        cards: list[int] = []
        for group in _groups(members, lambda m: m.group):
            if cards and len(cards) + len(group) > MAX_PER_SECTION:
                break
            cards += [m.id for m in group]
        return cards
    worst_first = rules[name].compare is operator.gt
    ranked = sorted(members, key=lambda m: m.score or 0.0, reverse=worst_first)
    return [m.id for m in ranked[:MAX_PER_SECTION]]


def _groups(items: list, group_of: Callable[[Any], int | None]) -> list[list]:
    """``items`` in duplicate groups (``group_of`` gives an item's group id), in
    group-id order, each group sorted by path."""
    groups: dict[int, list] = defaultdict(list)
    for item in items:
        groups[group_of(item) or 0].append(item)
    return [sorted(groups[gid], key=lambda item: item.path) for gid in sorted(groups)]


def _duplicate_groups(members: list[ImageRecord], name: str) -> str:
    out = []
    for group in _groups(members, lambda r: r.flags[name][1]):
        gid = group[0].flags[name][1] or 0
        label = "copies" if name == "exact_duplicate" else "look-alikes"
        cards = "".join(
            _card(r, "" if name == "exact_duplicate" else f"distance {r.flags[name][0]:.0f}")
            for r in group
        )
        out.append(
            f'<div class="group"><b>group {gid}</b> · {len(group)} {label}'
            f'<div class="grid">{cards}</div></div>'
        )
    return "".join(out)


def write_html_report(
    catalog_path: str | Path, out: str | Path, *, title: str | None = None
) -> Path:
    """Write the HTML report of a catalog to ``out`` (a file, or a folder -> ``index.html``)."""
    out = prepare_output(report_file(out))  # fails before the catalog is read
    return write_output(out, render_html(catalog_path, title=title))


def report_file(out: str | Path) -> Path:
    """Where :func:`write_html_report` writes for ``out``: itself if it ends in
    ``.html``/``.htm``, else ``out/index.html``."""
    out = Path(out)
    return out if out.suffix.lower() in (".html", ".htm") else out / "index.html"


def report_title(folder: str | Path) -> str:
    """``"boda report — NAME"`` for a scanned folder, printable whatever its name's bytes."""
    name = Path(folder).name or Path(folder).resolve().name or str(folder)
    return "boda report — " + printable(name)

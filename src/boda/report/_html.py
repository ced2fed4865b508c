"""The self-contained HTML report of a scan.

One file, no external assets (thumbnails are embedded as data URIs, the
histograms are inline SVG), so it can be mailed or opened from anywhere.
Sections: a summary (with a warning when the last scan did not finish), one
section per flag sorted from the worst image down, duplicate groups side by
side, score histograms with their thresholds, the files that could not be read
with the reason, and the links to other files of the folder.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as _dt
import html
import logging
import math
import operator
import os
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np

from boda import __version__
from boda.catalog import Catalog, ImageRecord, display_path, scan_running
from boda.core.text import printable, relative_href, visible
from boda.errors import CatalogError
from boda.io import prepare_output, write_output

__all__ = ["is_boda_report", "render_html", "write_html_report", "MAX_PER_SECTION", "MAX_PER_GROUP"]

_log = logging.getLogger(__name__)

#: Scores that flag nothing but are worth seeing across a folder.
_DESCRIPTIVE_SCORES = ("colorfulness", "mean_L", "std_L", "edge_density", "contrast")

#: Thumbnails shown per flag section; the rest are counted and left to --json/--csv.
MAX_PER_SECTION = 300
#: Thumbnails shown per duplicate group (copies look alike: a few show the
#: group); the other members are listed by name, up to :data:`MAX_NAMES_PER_GROUP`.
MAX_PER_GROUP = 24
MAX_NAMES_PER_GROUP = 1000

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
word-break:break-all}.score{color:#a5300f;font-weight:600;white-space:nowrap}.mark{font-weight:600;white-space:nowrap;color:#8a6d00}.mark.pick{color:#1e7b34}.mark.reject{color:#a5300f}.group{background:#fff;
border-radius:8px;padding:8px;margin:10px 0;box-shadow:0 1px 2px #0002}
.group .grid{gap:6px}table{border-collapse:collapse;background:#fff}td,th{padding:5px 10px;
border-bottom:1px solid #e3e6ea;text-align:left;vertical-align:top}.muted{color:#5f6873}
.hists{display:flex;flex-wrap:wrap;gap:14px}.hist{background:#fff;border-radius:6px;padding:8px;
box-shadow:0 1px 2px #0002}.card .swatches{display:flex;height:10px;padding:0}
.swatches span{display:block;height:10px}.wide{overflow-x:auto}
td code{overflow-wrap:break-word}td.path{overflow-wrap:anywhere;min-width:8em}
@media (min-width:800px){td.flag wbr{display:none}}
.card a{color:inherit;text-decoration:none}.card a:hover{text-decoration:underline}
.group details{margin-top:6px;font-size:12px}.group ul{margin:4px 0;padding-left:18px}
.warn{background:#fff4d6;border-left:4px solid #d9a400;padding:8px 12px}td.num{text-align:right}
"""


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _files(n: int) -> str:
    """``"1 file"``, ``"2 files"``."""
    return f"{n} file{'s' * (n != 1)}"


def _number(value: object) -> float | None:
    """``value`` as a float if it is a real number (not a bool), else None: a catalog
    is a file anyone could have edited, so text or null where a score goes is missing."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:  # an integer beyond float's range
            return None
    return None


def _name(relpath: bytes) -> str:
    """A file's name as the exports write it (:func:`boda.catalog.display_path`),
    with control and bidi characters shown as escapes."""
    return visible(display_path(relpath))


def _thumb(record: ImageRecord) -> str:
    if not record.thumbnail:
        return '<img alt="no thumbnail">'
    data = base64.b64encode(record.thumbnail).decode("ascii")
    alt = _esc(_name(record.relpath))
    return f'<img loading="lazy" alt="{alt}" src="data:image/jpeg;base64,{data}">'


def _swatches(record: ImageRecord) -> str:
    """The dominant colours as a strip, each as wide as its share of the image."""
    colors = record.extra.get("dominant_colors") if isinstance(record.extra, dict) else None
    valid = []
    for c in colors if isinstance(colors, list) else []:
        rgb = c.get("rgb") if isinstance(c, dict) else None
        fraction = _number(c.get("fraction")) if isinstance(c, dict) else None
        channels = [_number(v) for v in rgb] if isinstance(rgb, list) else []
        if len(channels) == 3 and None not in channels and fraction is not None:
            if all(map(math.isfinite, channels)) and 0.0 <= fraction <= 1.0:
                valid.append((channels, fraction))
    spans = "".join(
        f'<span title="{_hex(rgb)} · {100 * fraction:.0f}%" '
        f'style="flex:{fraction:.4f};background:{_hex(rgb)}"></span>'
        for rgb, fraction in valid
    )
    return f'<div class="swatches">{spans}</div>' if spans else ""


def _hex(rgb: list[float]) -> str:
    return "#" + "".join(f"{round(min(max(v, 0.0), 1.0) * 255):02x}" for v in rgb)


def _card(
    record: ImageRecord,
    score_text: str = "",
    link: str | None = None,
    mark: tuple[str | None, int | None] | None = None,
) -> str:
    """A thumbnail card; ``link`` (an href to the original file) makes it clickable,
    ``mark`` (the file's culling ``(decision, rating)``) shows on it."""
    size = f"{record.width}×{record.height}" if record.width else ""
    score = f' <span class="score">{_esc(score_text)}</span>' if score_text else ""
    score += _mark_badge(mark)
    name, thumb = _esc(_name(record.relpath)), _thumb(record)
    if link is not None:
        name = f'<a href="{_esc(link)}">{name}</a>'
        thumb = f'<a href="{_esc(link)}" tabindex="-1">{thumb}</a>'
    return (
        f'<div class="card">{thumb}{_swatches(record)}<div>{name}<br>'
        f'<span class="muted">{size}</span>{score}</div></div>'
    )


def _mark_badge(mark: tuple[str | None, int | None] | None) -> str:
    """``picked`` / ``rejected`` and the stars of a culling mark (boda mark, boda serve),
    so the report reads as the culling left it; empty without one."""
    decision, rating = mark or (None, None)
    words = {"pick": "picked", "reject": "rejected"}.get(decision or "", "")
    stars = "★" * rating if isinstance(rating, int) and 1 <= rating <= 5 else ""
    text = " ".join(w for w in (words, stars) if w)
    return f' <span class="mark {decision or "rated"}">{text}</span>' if text else ""


def _marks_by_id(catalog: Catalog) -> dict[int, tuple[str | None, int | None]]:
    """``{id: (decision, rating)}`` of the records with a culling mark that applies
    (links left out: they are in no selection); none when the marks file cannot be
    read (the report is still written, without them)."""
    from boda.catalog import marks_path

    try:
        rows = catalog.mark_rows(marks_path(catalog.path))
    except CatalogError as exc:
        _log.warning("note: the report shows no marks: %s", exc)
        return {}
    return {image_id: (decision, rating)
            for image_id, status, decision, rating in rows if status != "link"}


def _file_link(relpath: bytes, root: Path, page_folder: Path) -> str:
    """A relative URL from the page's folder to the file ``relpath`` under ``root``
    (:func:`boda.core.text.relative_href`: the links keep working when the scanned
    folder, with its ``.boda`` report inside, is moved; any name's bytes resolve)."""
    return relative_href(os.fsdecode(os.path.join(os.fsencode(root), relpath)), page_folder)


def _failure_reasons(failed: list[tuple[bytes, str | None]]) -> str:
    """A table of the reasons files could not be read, most frequent first, with how
    many files each and the first of them: 500 zero-byte files read as one line.
    Empty when every reason is its own file's (nothing to group)."""
    by_reason: dict[str, list[bytes]] = {}
    for relpath, error in failed:
        by_reason.setdefault(error or "unknown", []).append(relpath)
    if len(by_reason) == len(failed):
        return ""
    rows = "".join(
        f"<tr><td>{_esc(reason)}</td><td class='num'>{len(paths)}</td>"
        f"<td class='path'>{_esc(_name(paths[0]))}</td></tr>"
        for reason, paths in sorted(by_reason.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    )
    return ("<div class='wide'><table><tr><th>reason</th><th>files</th><th>for example</th></tr>"
            f"{rows}</table></div>")


def _histogram_svg(values: list[float], threshold: float | None, title: str) -> str:
    """A small inline-SVG histogram with the threshold drawn as a red line.

    The axis spans the scores and the threshold, except when far outliers
    (beyond Tukey's "far out" fences, three interquartile ranges past the
    quartiles) would squash the rest into a quarter of it: they are then
    gathered in the end bins, marked "≤" / "≥", so one 80:1 strip among photos
    leaves their bars readable.  Each bar's count and range are in its tooltip.
    """
    width, height, bins = 300, 120, 30
    arr = np.asarray([v for v in values if v is not None and math.isfinite(v)], float)
    if arr.size == 0:
        return ""
    has_threshold = threshold is not None and math.isfinite(threshold)
    marks = [threshold] if has_threshold else []
    lo, hi = min([float(arr.min()), *marks]), max([float(arr.max()), *marks])
    q1, median, q3 = (float(q) for q in np.percentile(arr, [25, 50, 75]))
    # Tukey's far-out fences, 3 interquartile ranges beyond the quartiles (half
    # the median when most values are equal, e.g. aspect ratios of 1).
    reach = 3 * (q3 - q1) or 0.5 * abs(median)
    inside = arr[(arr >= q1 - reach) & (arr <= q3 + reach)]
    fenced_lo, fenced_hi = min([float(inside.min()), *marks]), max([float(inside.max()), *marks])
    if hi - lo > 4 * (fenced_hi - fenced_lo):  # the outliers would squash the rest
        lo, hi = fenced_lo, fenced_hi
    clipped_lo, clipped_hi = float(arr.min()) < lo, float(arr.max()) > hi
    if hi <= lo:
        hi = lo + 1.0
    counts, edges = np.histogram(np.clip(arr, lo, hi), bins=bins, range=(lo, hi))
    top = max(int(counts.max()), 1)
    bar_w = (width - 20) / bins
    bars = "".join(
        f'<rect x="{10 + i * bar_w:.1f}" y="{100 - 90 * c / top:.1f}" '
        f'width="{bar_w - 1:.1f}" height="{90 * c / top:.1f}" fill="#4b7bb5">'
        f"<title>{c} image{'' if c == 1 else 's'}: {edges[i]:.3g} to {edges[i + 1]:.3g}"
        "</title></rect>"
        for i, c in enumerate(counts)
    )
    line = ""
    if has_threshold:
        x = 10 + (threshold - lo) / (hi - lo) * (width - 20)
        anchor = "end" if x > width / 2 else "start"
        shift = -4 if anchor == "end" else 4
        line = (
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="5" y2="100" stroke="#c0392b" stroke-width="2">'
            f"<title>threshold {threshold:.3g}</title></line>"
            f'<text x="{x + shift:.1f}" y="14" font-size="11" fill="#a5300f" '
            f'text-anchor="{anchor}">{threshold:.3g}</text>'
        )
    low_label = ("≤ " if clipped_lo else "") + f"{lo:.3g}"
    high_label = ("≥ " if clipped_hi else "") + f"{hi:.3g}"
    summary = f"histogram of {title}: {arr.size} images from {arr.min():.3g} to {arr.max():.3g}"
    return (
        f'<div class="hist"><b>{_esc(title)}</b><br><svg width="{width}" height="{height}" '
        f'role="img" aria-label="{_esc(summary)}">{bars}{line}'
        f'<text x="10" y="115" font-size="11">{low_label}</text>'
        f'<text x="{width - 10}" y="115" font-size="11" text-anchor="end">{high_label}</text>'
        "</svg></div>"
    )


@dataclasses.dataclass(frozen=True, slots=True)
class _Flagged:
    """What choosing a flag section's cards needs of a flagged image."""

    id: int
    relpath: bytes
    score: float | None
    group: int | None

    @property
    def path(self) -> str:
        return display_path(self.relpath)


def render_html(
    catalog_path: str | Path,
    *,
    title: str | None = None,
    root: str | Path | None = None,
    page_folder: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> str:
    """Render the report of the catalog at ``catalog_path`` as an HTML string.

    ``catalog_path`` is the catalog file, or the scanned folder holding it
    (:func:`boda.catalog.resolve_catalog_path`).  ``root`` is the scanned
    folder (default: the folder holding the catalog's ``.boda`` folder, or for a
    catalog kept elsewhere the folder its last scan was of); with
    ``page_folder``, the folder the page will be saved in, each card links to
    its original file by a relative URL.

    The catalog is read in one pass that keeps only counts, the scores for
    the histograms and what picks each section's cards; the full records (and
    thumbnails) are then read for the cards shown, at most
    :data:`MAX_PER_SECTION` a section, so memory does not grow with the
    folder's full records.  ``progress(records_read, records)`` is called
    now and then during that pass (the long part at a million files).
    """
    from boda.scan._flags import _rules, flag_descriptions

    rules = {rule.name: rule for rule in _rules()}
    known_flags = set(flag_descriptions())
    score_keys = list(dict.fromkeys([r.score_key for r in rules.values()] + [*_DESCRIPTIVE_SCORES]))
    n_files = n_ok = 0
    failed: list[tuple[bytes, str | None]] = []
    links: list[tuple[bytes, bytes | None]] = []
    by_flag: dict[str, list[_Flagged]] = defaultdict(list)
    values: dict[str, list[float | None]] = {key: [] for key in score_keys}
    with Catalog(catalog_path, readonly=True) as catalog:
        total = catalog.count_all() if progress else 0
        for r in catalog.records():
            n_files += 1
            if progress and n_files % 5000 == 0:
                progress(n_files, total)
            if r.status == "error":
                failed.append((r.relpath, r.error))
                continue
            if r.status == "link":
                links.append((r.relpath, r.link_to))
                continue
            if r.status != "ok":
                continue
            n_ok += 1
            for key in score_keys:
                values[key].append(_number(r.scores.get(key)))
            for name, (score, group) in r.flags.items():
                if name in known_flags:  # a flag name this boda does not know: left out
                    group = group if isinstance(group, int) else None
                    by_flag[name].append(_Flagged(r.id, r.relpath, _number(score), group))
        thresholds = _thresholds(catalog.get_setting("thresholds"))
        not_scanned = not_scanned_lines(catalog)
        complete, pending = last_scan_state(catalog)
        flags_stale = catalog.flags_stale()
        mirrored = catalog.mirrored_ids()
        mirrored_scan = catalog.mirrored_scan()
        stored_root = catalog.get_setting("root")  # the folder the last scan was of
        catalog_path = catalog.path  # the file, when a folder was given
        sections = {name: _section(members, name, rules) for name, members in by_flag.items()}
        records = catalog.records_by_id(
            {m.id for shown, _ in sections.values() for m in shown}, with_thumbnails=True
        )
        marks = _marks_by_id(catalog)
    descriptions = flag_descriptions()
    rule_text = _rule_text(thresholds)
    if mirrored_scan and "near_duplicate" in rule_text:
        rule_text["near_duplicate"] += ", or of a left-right mirror image (--mirrored)"

    if root is None:
        # A catalog in a .boda folder travels with its photos (the folder holding it); one
        # elsewhere (scan(..., catalog_path=...)) names the folder it was made for.
        folder = Path(catalog_path).resolve().parent
        root = (
            Path(stored_root) if folder.name != ".boda" and isinstance(stored_root, str)
            else folder.parent
        )
    root = Path(root)

    def link(relpath: bytes) -> str | None:
        return None if page_folder is None else _file_link(relpath, root, Path(page_folder))

    title = title or report_title(root)
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        _GENERATOR,
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>",
        f"<header><h1>{_esc(title)}</h1><p>{_esc(visible(root.resolve()))}<br>"
        f"{_files(n_files)} · {n_ok} readable · {len(failed)} unreadable"
        + (f" · {len(links)} link{'s' * (len(links) != 1)}" if links else "")
        + f" · boda {__version__} · {_dt.datetime.now().strftime('%Y-%m-%d %H:%M')}"
        "</p></header><main>",
    ]
    if complete is False and scan_running(catalog_path):
        # Not "interrupted": the scan is still at work (it holds the catalog's lock).
        parts.append(
            '<p class="warn"><b>A scan of this folder is running</b>'
            + (f": {_files(pending)} still to analyse" if isinstance(pending, int) else "")
            + ". This report shows the results saved so far; the flags and duplicate sets "
            "are those of the scan before. Write the report again when it ends.</p>"
        )
    elif complete is False:
        parts.append(
            '<p class="warn"><b>The last scan did not finish</b> (it was interrupted)'
            + (f": {_files(pending)} {'was' if pending == 1 else 'were'} still to analyse"
               if isinstance(pending, int) else "")
            + ". New files among them are missing from this report, changed ones show "
            "their previous scores; files that were deleted are gone from it. Run "
            "<code>boda scan</code> on the folder again to finish.</p>"
        )
    if flags_stale:
        parts.append(
            '<p class="warn"><b>The flags are out of date</b>: the last scan was stopped '
            "before it derived them from its results, so they are those of the scan before "
            "(files that are gone have lost theirs). Run <code>boda scan</code> on the folder "
            "again to update them: no image is decoded again for that.</p>"
        )
    flag_names = [name for name in descriptions if name in by_flag]
    nav = " ".join(f'<a href="#flag-{n}">{n} ({len(by_flag[n])})</a>' for n in flag_names)
    parts.append(
        f"<nav>{nav} <a href='#histograms'>histograms</a> "
        f"<a href='#failures'>unreadable ({len(failed)})</a>"
        + (f" <a href='#links'>links ({len(links)})</a>" if links else "")
        + "</nav>"
    )
    cards = [f'<div class="stat"><b>{n_ok}</b>readable</div>',
             f'<div class="stat"><b>{len(failed)}</b>unreadable</div>']
    cards += [
        f'<div class="stat"><b>{len(by_flag.get(n, []))}</b>{_esc(n)}</div>' for n in descriptions
    ]
    parts.append(f'<h2>Summary</h2><div class="cards">{"".join(cards)}</div>')
    if rule_text:
        # A line may break after "_" (a <wbr>), so no name is broken inside a word in a
        # narrow window ("blurr|y <"): the flag and rule columns squeezed the rule to 1 ch.
        rows = "".join(
            f"<tr><td class='flag'>{_esc(n).replace('_', '_<wbr>')}</td>"
            f"<td>{_esc(descriptions.get(n, ''))}</td>"
            f"<td><code>{_esc(rule_text.get(n, '')).replace('_', '_<wbr>')}</code></td></tr>"
            for n in descriptions
        )
        parts.append(
            "<details><summary>Flag rules and thresholds</summary><div class='wide'><table>"
            f"<tr><th>flag</th><th>meaning</th><th>rule</th></tr>{rows}</table></div></details>"
        )

    for name in flag_names:
        members, (shown, groups) = by_flag[name], sections[name]
        parts.append(
            f'<h2 id="flag-{name}">{_esc(name)} <span class="muted">({len(members)})</span></h2>'
            f'<p class="muted">{_esc(descriptions[name])}</p>'
        )
        if groups is not None:
            parts.append(_duplicate_groups(groups, name, records, link, mirrored, marks))
            listed = sum(len(group) for group in groups)
        else:
            key = rules[name].score_key
            parts.append(
                '<div class="grid">'
                + "".join(
                    _card(
                        records[m.id],
                        "" if m.score is None else f"{key} {m.score:.3g}",
                        link(m.relpath),
                        marks.get(m.id),
                    )
                    for m in shown
                )
                + "</div>"
            )
            listed = len(shown)
        if len(members) > listed:
            parts.append(
                f'<p class="muted">… and {len(members) - listed} more: '
                "see <code>boda report DIR --json</code> or <code>--csv</code>.</p>"
            )

    parts.append(
        '<h2 id="histograms">Score histograms</h2><p class="muted">Images per score bin, '
        "from the lowest score to the highest; the red line is the flag's threshold.</p>"
        '<div class="hists">'
    )
    for name, rule in rules.items():
        key = rule.score_key
        title = key if key == name else f"{key} ({name})"  # "blurry", not "blurry (blurry)"
        parts.append(_histogram_svg(values[key], thresholds.get(name), title))
    for key in _DESCRIPTIVE_SCORES:
        parts.append(_histogram_svg(values[key], None, key))
    parts.append("</div>")
    described = any(v is not None for key in ("colorfulness", "edge_density") for v in values[key])
    if n_ok and not described:
        parts.append(  # a scan without --describe: say where the rest comes from
            '<p class="muted">Colourfulness, edge density and colour swatches are measured '
            "by <code>boda scan DIR --describe</code>.</p>"
        )

    parts.append(f'<h2 id="failures">Unreadable files ({len(failed)})</h2>')
    if failed:
        parts.append(_failure_reasons(failed))
        rows = "".join(
            f"<tr><td class='path'>{_esc(_name(relpath))}</td><td>{_esc(error)}</td></tr>"
            for relpath, error in failed
        )
        parts.append(
            "<div class='wide'><table><tr><th>file</th><th>reason</th></tr>"
            f"{rows}</table></div>"
        )
    else:
        parts.append('<p class="muted">Every file could be read.</p>')
    if not_scanned:
        items = "".join(f"<li>{_esc(line)}</li>" for line in not_scanned)
        parts.append(f'<h3 id="not-scanned">Not scanned</h3><ul>{items}</ul>')
    if links:
        rows = "".join(
            f"<tr><td class='path'>{_esc(_name(relpath))}</td>"
            f"<td class='path'>{_esc(_name(target) if target is not None else '?')}</td></tr>"
            for relpath, target in links
        )
        parts.append(
            f'<h2 id="links">Links ({len(links)})</h2><p class="muted">File symlinks to '
            "another file of the folder: the target is analysed under its own name, the "
            "link is not (so it is no duplicate of its target).</p>"
            "<div class='wide'><table><tr><th>link</th><th>links to</th></tr>"
            f"{rows}</table></div>"
        )
    parts.append("</main></body></html>")
    return "\n".join(parts)


def last_scan_state(catalog: Catalog) -> tuple[object, int | None]:
    """What the catalog says of the last scan: its ``complete`` value (False: it was
    interrupted) and how many files it left unanalysed (None: none recorded).  A
    scan that was killed (kill -9, a power cut) never said how far it got, so that
    is counted from the records written since it started."""
    last_scan = catalog.get_setting("last_scan")
    last_scan = last_scan if isinstance(last_scan, dict) else {}
    pending = last_scan.get("pending")
    pending = pending if isinstance(pending, int) and not isinstance(pending, bool) else None
    started, to_analyse = _number(last_scan.get("started")), last_scan.get("to_analyse")
    if pending is None and started is not None and math.isfinite(started):
        to_analyse = to_analyse if isinstance(to_analyse, int) else 0
        pending = max(0, to_analyse - catalog.analysed_since(started))
    return last_scan.get("complete"), pending


def not_scanned_lines(catalog: Catalog) -> list[str]:
    """The sentences the last scan's console gave for what its walk passed over (RAW
    files, iCloud placeholders, folder links, files its excludes skipped), from the
    catalog, for the report and ``boda serve``.  Values a damaged or hand-edited
    catalog holds that are not of the kind written are left out."""
    from boda.scan._walk import (
        describe_icloud_placeholders,
        describe_raw_files,
        describe_skipped,
    )

    def count_of(value: object) -> int:
        return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0

    def counts(value: object) -> dict[str, int]:
        return {str(k): count_of(n) for k, n in (value.items() if isinstance(value, dict) else ())
                if count_of(n)}

    def listed(value: object) -> tuple[int, list]:
        value = value if isinstance(value, dict) else {}
        first = value.get("first")
        return count_of(value.get("count")), first if isinstance(first, list) else []

    lines = []
    raw_files = counts(catalog.get_setting("raw_files", {}))
    if raw_files:
        lines.append(describe_raw_files(raw_files))
    stored = catalog.get_setting("not_scanned", {})
    stored = stored if isinstance(stored, dict) else {}
    n, first = listed(stored.get("icloud_placeholders"))
    if n:
        lines.append(describe_icloud_placeholders(n, first))
    n, first = listed(stored.get("folder_links"))
    if n:
        pairs = [f"{p[0]} -> {p[1]}" for p in first[:3] if isinstance(p, list) and len(p) == 2]
        lines.append(f"{n} folder link{'s' * (n != 1)} not followed ({', '.join(pairs)}"
                     f"{' …' if n > 3 else ''}): scan the target folder, or one that holds it")
    default_skipped = counts(stored.get("default_skipped"))
    if default_skipped:
        lines.append(f"skipped by default: {describe_skipped(default_skipped)} (files and "
                     "folders that are not photos; boda scan --no-default-excludes scans them)")
    skipped = counts(stored.get("skipped"))
    if skipped:
        lines.append(f"skipped by the excludes: {describe_skipped(skipped)}")
    return lines


def _thresholds(stored: object) -> dict[str, float]:
    """The thresholds a catalog stored; values that are not finite numbers, and names
    this boda does not know, are left out (a damaged or hand-edited catalog)."""
    from boda.scan._flags import default_thresholds

    known = default_thresholds()
    out = {}
    for name, value in (stored.items() if isinstance(stored, dict) else ()):
        number = _number(value)
        if name in known and number is not None and math.isfinite(number):
            out[name] = number
    return out


def _rule_text(thresholds: dict[str, float]) -> dict[str, str]:
    """Each flag's rule in words, for the flags whose threshold the catalog holds."""
    from boda.scan._flags import default_thresholds, describe_rules

    if not thresholds:
        return {}
    described = describe_rules({**default_thresholds(), **thresholds})
    return {k: v for k, v in described.items() if k in thresholds or k == "exact_duplicate"}


def _section(
    members: list[_Flagged], name: str, rules: dict
) -> tuple[list[_Flagged], list[list[_Flagged]] | None]:
    """The cards a flag section shows, and for duplicates its groups shown.

    At most :data:`MAX_PER_SECTION` cards, the worst first.  Duplicates go
    in whole groups, in group order, until the cap; each group shows its first
    :data:`MAX_PER_GROUP` members as cards (the first group always, however
    large) and names the rest.
    """
    if name not in ("exact_duplicate", "near_duplicate"):
        worst_first = rules[name].compare is operator.gt
        # Images without a real score (a hand-edited catalog: NULL, NaN) go last, in path
        # order: as 0.0 they came first among the blurry ones, and NaN breaks any sort.
        scored = [m for m in members if m.score is not None and math.isfinite(m.score)]
        unscored = [m for m in members if m.score is None or not math.isfinite(m.score)]
        ranked = sorted(scored, key=lambda m: m.score, reverse=worst_first) + unscored
        return ranked[:MAX_PER_SECTION], None
    per_group = min(MAX_PER_GROUP, MAX_PER_SECTION)
    cards: list[_Flagged] = []
    groups: list[list[_Flagged]] = []
    for group in _groups(members):
        if cards and len(cards) + min(len(group), per_group) > MAX_PER_SECTION:
            break
        groups.append(group)
        cards += group[:per_group]
    return cards, groups


def _groups(members: list[_Flagged]) -> list[list[_Flagged]]:
    """Duplicate groups in group-id order, each sorted by path."""
    groups: dict[int, list[_Flagged]] = defaultdict(list)
    for m in members:
        groups[m.group or 0].append(m)
    return [sorted(groups[gid], key=lambda m: m.relpath) for gid in sorted(groups)]


def _duplicate_groups(
    groups: list[list[_Flagged]],
    name: str,
    records: dict[int, ImageRecord],
    link: Callable[[bytes], str | None],
    mirrored: frozenset[int] = frozenset(),
    marks: dict[int, tuple[str | None, int | None]] | None = None,
) -> str:
    """The groups of a duplicate section; ``mirrored``: the ids of the near-duplicate
    members whose nearest match is a mirror image (their cards say so); ``marks``: the
    culling marks by record id."""
    marks = marks or {}
    per_group = min(MAX_PER_GROUP, MAX_PER_SECTION)
    label = "copies" if name == "exact_duplicate" else "look-alikes"
    mirrored = mirrored if name == "near_duplicate" else frozenset()

    def score(m: _Flagged) -> str:
        if name == "exact_duplicate" or m.score is None:
            return ""
        return f"distance {m.score:.0f}" + (" · mirrored" if m.id in mirrored else "")

    out = []
    for group in groups:
        cards = "".join(
            _card(records[m.id], score(m), link(m.relpath), marks.get(m.id))
            for m in group[:per_group]
        )
        rest = group[per_group:]
        names = ""
        if rest:
            items = "".join(
                f"<li>{_esc(_name(m.relpath))}"
                + (" (mirrored)" if m.id in mirrored else "") + "</li>"
                for m in rest[:MAX_NAMES_PER_GROUP]
            )
            if len(rest) > MAX_NAMES_PER_GROUP:
                items += (
                    f"<li>… {len(rest) - MAX_NAMES_PER_GROUP} more: "
                    "see <code>boda report DIR --json</code></li>"
                )
            names = (
                f"<details><summary>{len(rest)} more {label}</summary><ul>{items}</ul></details>"
            )
        flipped = sum(m.id in mirrored for m in group)
        note = (
            f" · {flipped} matched as a mirror image (left-right flipped)" if flipped else ""
        )
        out.append(
            f'<div class="group"><b>group {group[0].group or 0}</b> · {len(group)} {label}'
            f'{note}<div class="grid">{cards}</div>{names}</div>'
        )
    return "".join(out)


def write_html_report(
    catalog_path: str | Path,
    out: str | Path,
    *,
    title: str | None = None,
    root: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write the HTML report of a catalog to ``out`` (a file, or a folder -> ``index.html``).

    ``root`` is the scanned folder (see :func:`render_html`); the cards link
    to the original files relative to where the page is written;
    ``progress`` is passed to :func:`render_html`.
    """
    out = prepare_output(report_file(out))  # fails before the catalog is read
    page = render_html(
        catalog_path, title=title, root=root, page_folder=out.resolve().parent, progress=progress
    )
    return write_output(out, page)


#: The mark of a page boda wrote (its second line): :func:`is_boda_report`.
_GENERATOR = '<meta name="generator" content="boda">'


def is_boda_report(path: str | Path) -> bool:
    """Whether ``path`` is an HTML report boda wrote (it carries boda's generator mark).

    Such a page is made again from the catalog at any time, so a new report may
    replace it; any other existing file is the user's and is left alone unless
    they ask (``--overwrite``).

    Examples
    --------
    >>> import tempfile, os
    >>> page = os.path.join(tempfile.mkdtemp(), "r.html")
    >>> _ = open(page, "w").write("<!doctype html><p>mine</p>")
    >>> is_boda_report(page)
    False
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
    except OSError:
        return False
    return _GENERATOR.encode() in head


def report_file(out: str | Path) -> Path:
    """Where :func:`write_html_report` writes for ``out``: itself if it ends in
    ``.html``/``.htm``, else ``out/index.html``."""
    out = Path(out)
    return out if out.suffix.lower() in (".html", ".htm") else out / "index.html"


def report_title(folder: str | Path) -> str:
    """``"boda report — NAME"`` for a scanned folder, printable whatever its name's bytes."""
    name = Path(folder).name
    if name in ("", ".", ".."):  # "..", "/x/.." or "": the real folder's name
        name = Path(folder).resolve().name or str(Path(folder).resolve())
    return "boda report — " + printable(name)

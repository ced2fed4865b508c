"""The page ``boda map DIR -o map.html`` writes: every image of a folder as a point
of a two-dimensional map of a model's features, coloured by its class folder.

One self-contained HTML file (inline SVG, small inline thumbnails, a few lines of
script, no network): hover a point to see the image and its label, click it to
open the file (a relative link), and read the table of likely label errors
(images whose nearest neighbours in feature space carry another label).
Presentation only: the numbers are the command's JSON points.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any

from boda.core.text import html_text as _text
from boda.core.text import relative_href

#: Colours of the first classes (Okabe-Ito, readable by colour-blind people, and two
#: more), then colours far from them (:func:`class_colours`).  No grey: grey is an image
#: without a label.
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442",
           "#000000", "#882d17", "#7f3c8d")
UNLABELLED = "#b8bec6"
_SIDE = 720  # the map's side in the page, in CSS pixels
MAX_ROWS = 200  # the label-error table's rows (the map rings every suspect)
_PAD = 14

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1d2125}
header{background:#1d2125;color:#fff;padding:16px 24px}header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;color:#c9ced6}
main{padding:16px 24px;display:flex;gap:24px;flex-wrap:wrap;align-items:flex-start}
svg{background:#fff;border-radius:6px;max-width:100%;height:auto;position:sticky;top:8px;
flex:0 1 auto}circle{cursor:pointer}
circle.suspect{stroke:#b3261e;stroke-width:2.5}circle:hover{stroke:#1d2125;stroke-width:3}
.side{flex:1 1 280px;min-width:0;overflow-x:auto}
.legend span{display:inline-block;width:12px;height:12px;
border-radius:6px;margin-right:6px;vertical-align:-1px}.legend div{margin:2px 0}
#tip{position:fixed;pointer-events:none;background:#fff;border:1px solid #c9ced6;
border-radius:6px;padding:6px;font-size:12px;max-width:220px;box-shadow:0 2px 6px #0003}
#tip img{display:block;width:96px;height:96px;object-fit:contain;background:#e9ecef;
image-rendering:pixelated;margin-bottom:4px}table{border-collapse:collapse;background:#fff}
td,th{padding:4px 8px;border-bottom:1px solid #e3e6ea;text-align:left;vertical-align:middle}
td img{width:40px;height:40px;object-fit:contain;image-rendering:pixelated}.muted{color:#5c6570}
"""

_SCRIPT = """
var tip = document.getElementById('tip');
document.querySelectorAll('circle').forEach(function (c) {
  c.addEventListener('mouseenter', function (e) {
    var p = POINTS[+c.dataset.i];
    tip.replaceChildren();
    if (p.thumb) { var img = document.createElement('img'); img.src = p.thumb; tip.append(img); }
    var name = document.createElement('div'); name.textContent = p.name; tip.append(name);
    var more = document.createElement('div'); more.className = 'muted';
    more.textContent = p.about; tip.append(more);
    tip.hidden = false;
  });
  c.addEventListener('mousemove', function (e) {
    // below right of the pointer; above or left of it where the window ends
    var x = e.clientX + 14, y = e.clientY + 14;
    if (x + tip.offsetWidth > innerWidth) x = Math.max(0, e.clientX - 14 - tip.offsetWidth);
    if (y + tip.offsetHeight > innerHeight) y = Math.max(0, e.clientY - 14 - tip.offsetHeight);
    tip.style.left = x + 'px'; tip.style.top = y + 'px';
  });
  c.addEventListener('mouseleave', function () { tip.hidden = true; });
});
"""


def _plain(value: object) -> str:
    """As :func:`_text`, unescaped: for JSON strings the script shows as text."""
    return html.unescape(_text(value))


def _more_colours(n: int) -> list[str]:
    """``n`` colours past :data:`PALETTE`, each in turn the one of a grid of hues,
    lightnesses and saturations farthest (CIE L*a*b*, the CIE76 difference) from every
    colour taken before it, the palette's, the unlabelled grey's and the page's white
    among them: every class past the tenth was the same grey #666666.  Past the grid's
    384 colours they repeat."""
    import colorsys

    import numpy as np

    from boda.color._lab import srgb_to_lab

    grid = [colorsys.hls_to_rgb(h / 48, lightness, saturation) for h in range(48)
            for lightness in (0.3, 0.45, 0.6, 0.72) for saturation in (0.55, 0.9)]
    hexes = [f"#{round(255 * r):02x}{round(255 * g):02x}{round(255 * b):02x}"
             for r, g, b in grid]
    lab = srgb_to_lab(np.array(grid, dtype=np.float64))

    def of(colour: str) -> np.ndarray:
        return srgb_to_lab(np.array([int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]))

    taken = [*PALETTE, UNLABELLED, "#ffffff"]
    nearest = np.min([np.linalg.norm(lab - of(c), axis=1) for c in taken], axis=0)
    out: list[str] = []
    for _ in range(n):
        best = int(np.argmax(nearest))  # the first of the farthest: the same every time
        out.append(hexes[best])
        nearest = np.minimum(nearest, np.linalg.norm(lab - lab[best], axis=1))
    return out


def class_colours(names: list[str]) -> dict[str, str]:
    """A colour per class name, in order of first appearance: :data:`PALETTE`, then
    the colours farthest from those before (:func:`_more_colours`).

    Examples
    --------
    >>> colours = class_colours([f"class {i}" for i in range(100)])
    >>> len(set(colours.values())), colours["class 0"], colours["class 10"]
    (100, '#0072b2', '#0b0bda')
    """
    out: dict[str, str] = {}
    for name in names:
        out.setdefault(name, "")
    colours = [*PALETTE, *_more_colours(max(0, len(out) - len(PALETTE)))]
    return {name: colours[n] for n, name in enumerate(out)}


def _in_folder(path: str, folder: str) -> str:
    """``path`` from the mapped ``folder`` on (the header names the folder once): the
    whole absolute path took the table's width, its label columns out of a phone's view."""
    prefix = os.path.join(folder, "")  # with one separator at its end
    return path[len(prefix):] if path.startswith(prefix) else path


def _suspect_row(point: dict[str, Any], thumb: str | None, page: Path, folder: str) -> str:
    picture = f'<img alt="" src="{thumb}">' if thumb else ""
    link = relative_href(point["path"], page.parent)
    return (f"<tr><td>{picture}</td>"
            f"<td><a href='{link}'>{_text(_in_folder(point['path'], folder))}</a></td>"
            f"<td>{_text(point['label'])}</td><td>{_text(point['majority'])}</td>"
            f"<td>{round(100 * point['agreement'])}%</td></tr>")


def map_html(result: dict[str, Any], thumbs: list[str | None], page: Path) -> str:
    """The page of ``result`` (the command's JSON object) with ``thumbs`` (a data URI
    or None per point), written at ``page`` (links are relative to its folder)."""
    points = result["points"]
    xs = [p["x"] for p in points]
    ys = [p["y"] for p in points]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    sx = (_SIDE - 2 * _PAD) / ((x1 - x0) or 1.0)
    sy = (_SIDE - 2 * _PAD) / ((y1 - y0) or 1.0)
    scale = min(sx, sy)
    # the cloud centred in the square: it was drawn from the bottom-left corner, so the
    # shorter side of every map (a PCA map's second axis) left a band empty on top, and
    # identical points (one spot) sat in the corner
    mx, my = (x0 + x1) / 2, (y0 + y1) / 2
    labels = [p["label"] for p in points if p["label"] is not None]
    colours = class_colours(labels)
    radius = 5 if len(points) <= 500 else 3.5 if len(points) <= 5000 else 2.5
    circles = []
    # suspects last, so on top: a copy of an image in another class sits on the same spot
    for i in sorted(range(len(points)), key=lambda i: bool(points[i].get("suspect"))):
        p = points[i]
        cx = _SIDE / 2 + (p["x"] - mx) * scale
        cy = _SIDE / 2 - (p["y"] - my) * scale  # y up, as on a plot
        fill = colours.get(p["label"], UNLABELLED) if p["label"] is not None else UNLABELLED
        suspect = " class='suspect'" if p.get("suspect") else ""
        circles.append(
            f"<a href='{relative_href(p['path'], page.parent)}'><circle data-i='{i}' cx='{cx:.1f}' "
            f"cy='{cy:.1f}' r='{radius}' fill='{fill}'{suspect}/></a>")
    shown = []
    for p, thumb in zip(points, thumbs, strict=True):
        about = "no label" if p["label"] is None else f"label {p['label']}"
        if p.get("agreement") is not None:
            about += (f"; {round(100 * p['agreement'])}% of its neighbours agree"
                      + (f", most are {p['majority']}" if p.get("suspect") else ""))
        shown.append({"name": _plain(_in_folder(p["path"], result["folder"])),
                      "about": _plain(about), "thumb": thumb})
    counts = {name: labels.count(name) for name in colours}
    legend = "".join(
        f"<div><span style='background:{colour}'></span>{_text(name)} "
        f"<b>{counts[name]}</b></div>" for name, colour in colours.items())
    unlabelled = len(points) - len(labels)
    if unlabelled:
        legend += (f"<div><span style='background:{UNLABELLED}'></span>no label "
                   f"<b>{unlabelled}</b></div>")
    suspects = sorted((i for i, p in enumerate(points) if p.get("suspect")),
                      key=lambda i: points[i]["agreement"])
    rows = "".join(_suspect_row(points[i], thumbs[i], page, result["folder"])
                   for i in suspects[:MAX_ROWS])
    if len(suspects) > MAX_ROWS:
        rows += (f"<tr><td></td><td colspan='4' class='muted'>… and {len(suspects) - MAX_ROWS} "
                 "more, ringed on the map; every one: boda map DIR --labels-from-folders "
                 "--json</td></tr>")
    errors = ""
    if result.get("k"):
        errors = (
            f"<h2>Likely label errors ({len(suspects)})</h2><p class='muted'>Images whose "
            f"{result['k']} nearest labelled neighbours (by the features of layer "
            f"{_text(result['layer'])}) mostly carry another label (Deep k-NN, Bahri et al. "
            "2020); ringed in red on the map.</p>"
            + (f"<table><tr><th></th><th>file</th><th>label</th><th>neighbours say</th>"
               f"<th>agree</th></tr>{rows}</table>" if suspects else "<p>None.</p>"))
    about = (f"{len(points)} images of {_text(result['folder'])} · model "
             f"{_text(result['model'])}, layer {_text(result['layer'])} · "
             f"{'t-SNE' if result['method'] == 'tsne' else 'PCA'} map")
    # "<", ">" and "&" as JSON escapes: no "</script>" or "<!--<script" (which keeps the
    # script element open) can come from a file name
    data = (json.dumps(shown).replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("&", "\\u0026"))
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>boda map: {len(points)} images</title><style>{_STYLE}</style></head><body>"
        f"<header><h1>boda map</h1><p>{about}</p></header><main>"
        f"<svg viewBox='0 0 {_SIDE} {_SIDE}' width='{_SIDE}' height='{_SIDE}' "
        f"role='img' aria-label='map of the images'>{''.join(circles)}</svg>"
        f"<div class='side'><h2>Classes</h2><div class='legend'>{legend}</div>{errors}</div>"
        f"</main><div id='tip' hidden></div><script>var POINTS = {data};{_SCRIPT}</script>"
        "</body></html>\n"
    )


def write_map(result: dict[str, Any], thumbs: list[str | None], page: Path) -> Path:
    """Write :func:`map_html` to ``page`` (atomically)."""
    from boda.io import write_output

    return write_output(page, map_html(result, thumbs, page))

"""The ``index.html`` that ``boda explain DIR -o OUT/`` writes beside its montages.

One page a person can open to look through a batch: every montage with what the
model predicted (and, with labels from folders, whether it was right), the
faithfulness table, the most frequent confusions, and the files that failed.
Filters show only the misclassified images, the right ones or the failures.
Plain HTML, CSS and a few lines of script: no network, montages linked relatively
so the folder can be moved or shared as it is.  Presentation only: the numbers
are the command's JSON records.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from boda.cli._common import class_text
from boda.core.text import html_text as _text
from boda.core.text import relative_href as _href
from boda.core.text import visible

#: The page's file name in the output folder.
GALLERY_NAME = "index.html"

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1d2125}
header{background:#1d2125;color:#fff;padding:16px 24px}header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;color:#c9ced6}main{padding:16px 24px}
.muted{color:#5c6570}table{border-collapse:collapse;margin:8px 0 16px;background:#fff}
td,th{padding:4px 10px;border-bottom:1px solid #e3e6ea;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
table{display:block;width:fit-content;max-width:100%;overflow-x:auto}
.filters{margin:12px 0;display:flex;gap:8px;flex-wrap:wrap}
.filters button{font:inherit;padding:4px 10px;border:1px solid #aab2bd;border-radius:14px;
background:#fff;cursor:pointer}.filters button.on{background:#1d2125;color:#fff}
.item{background:#fff;border-radius:6px;margin:10px 0;padding:10px;display:flex;gap:14px;
flex-wrap:wrap;align-items:flex-start}.item[hidden]{display:none}
.item img{max-width:100%;background:#e9ecef}.facts{flex:1 1 440px;min-width:0}
.name{font-weight:600;word-break:break-all}.wrong{border-left:5px solid #b3261e}
.right{border-left:5px solid #1c6130}.failed{border-left:5px solid #8a6d00}
.badge{display:inline-block;border-radius:4px;padding:0 6px;font-size:12px;margin-right:4px}
.badge.wrong{background:#fde7e5;color:#8c1d18;border:0}.badge.right{background:#e3f4e8;
color:#1c6130;border:0}
"""

_SCRIPT = """
document.querySelectorAll('.filters button').forEach(function (b) {
  b.addEventListener('click', function () {
    document.querySelectorAll('.filters button').forEach(function (o) {
      o.classList.toggle('on', o === b); });
    document.querySelectorAll('.item').forEach(function (it) {
      it.hidden = b.dataset.show !== 'all' && !it.classList.contains(b.dataset.show); });
  });
});
"""


def _percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def _item(record: dict[str, Any], folder: Path) -> str:
    # Control and bidi characters as escapes, as the console and boda's other pages show
    # names: a newline would read as a space, U+202E would reverse the rest of the name.
    name = _text(visible(record["image"]))
    if "error" in record:
        return (f'<div class="item failed"><div class="facts"><div class="name">{name}</div>'
                f'<p>failed: {_text(visible(record["error"]))}</p></div></div>')
    top = record["predictions"][0]
    label = record.get("label")
    kind = "" if label is None else (" right" if record["correct"] else " wrong")
    verdict = ""
    if label is not None:
        verdict = (f'<span class="badge right">✓ {_text(label["name"])}</span>' if record["correct"]
                   else f'<span class="badge wrong">✕ labelled {_text(label["name"])}</span>')
    rows = "".join(
        f"<tr><td>{_text(method)}</td><td class='n'>({st['peak_xy'][0]}, {st['peak_xy'][1]})"
        f"</td><td class='n'>{st['area_above_half']:.1%}</td>"
        + "".join(f"<td class='n'>{record['metrics'][method][key]:.3f}</td>"
                  for key in ("deletion_auc", "insertion_auc") if "metrics" in record)
        + "</tr>"
        for method, st in record["maps"].items()
    )
    heads = "<th>map</th><th>peak (x, y)</th><th>area &gt; 0.5</th>" + (
        "<th>deletion AUC ↓</th><th>insertion AUC ↑</th>" if "metrics" in record else "")
    picture = ""
    if record.get("output"):
        href = _href(record["output"], folder)
        picture = f'<a href="{href}"><img loading="lazy" alt="{name}" src="{href}"></a>'
    others = ", ".join(f"{_text(p['name'])} {_percent(p['probability'])}"
                       for p in record["predictions"][1:3])
    return (
        f'<div class="item{kind}">{picture}<div class="facts"><div class="name">{name}</div>'
        f"<p>{verdict}predicted <b>{_text(top['name'])}</b> {_percent(top['probability'])}"
        f'<span class="muted">{"; then " + others if others else ""}</span><br>'
        f"explained: {_text(class_text(record['target'], record['target_name']))}</p>"
        f"<table><tr>{heads}</tr>{rows}</table></div></div>"
    )


def _summary(summary: dict[str, Any], records: list[dict[str, Any]]) -> str:
    parts = []
    acc = summary.get("accuracy")
    if acc and acc["labelled"]:
        parts.append(
            f"<h2>Accuracy</h2><p><b>{acc['correct']} of {acc['labelled']}</b> labelled images "
            f"right ({_percent(acc['top1'])})"
            + (f"; {acc['unlabelled']} image{'s' * (acc['unlabelled'] != 1)} in folders that "
               "name no class" if acc["unlabelled"] else "") + ".</p>"
        )
        if acc["confusions"]:
            rows = "".join(
                f"<tr><td>{_text(c['label'])}</td><td>{_text(c['predicted'])}</td>"
                f"<td class='n'>{c['count']}</td></tr>" for c in acc["confusions"][:20])
            parts.append("<table><tr><th>labelled</th><th>predicted</th><th>images</th></tr>"
                         f"{rows}</table>")
    means = summary.get("metrics")
    if means:
        from boda.cli._explain_batch import METRICS

        heads = "".join(f"<th>{t} {'↑' if up else '↓'}</th>" for _, t, up in METRICS)
        rows = "".join(
            f"<tr><td>{_text(method)}</td>"
            + "".join(f"<td class='n'>{values[key]:.{3 if key.endswith('auc') else 1}f}</td>"
                      for key, _, _ in METRICS) + "</tr>"
            for method, values in means.items())
        parts.append(f"<h2>Faithfulness (mean over the images)</h2><table><tr><th>method</th>"
                     f"{heads}</tr>{rows}</table>")
    return "".join(parts)


def gallery_html(records: list[dict[str, Any]], summary: dict[str, Any], folder: Path) -> str:
    """The page for ``records`` (the command's JSON records, in order) and ``summary``
    (``accuracy`` and ``metrics`` where computed), for the output ``folder``."""
    done = [r for r in records if "error" not in r]
    first = done[0] if done else {}
    wrong = sum(1 for r in done if r.get("label") is not None and not r["correct"])
    right = sum(1 for r in done if r.get("label") is not None and r["correct"])
    failed = len(records) - len(done)
    buttons = [("all", f"all {len(records)}")]
    if wrong or right:
        buttons += [("wrong", f"misclassified {wrong}"), ("right", f"right {right}")]
    if failed:
        buttons.append(("failed", f"failed {failed}"))
    filters = "".join(
        f'<button type="button" data-show="{key}"{" class=on" if key == "all" else ""}>'
        f"{_text(text)}</button>" for key, text in buttons)
    about = (f"model {_text(first.get('model', '?'))}"
             + (f", layer {_text(first['layer'])}" if first.get("layer") else "")
             + (f", maps: {_text(', '.join(first['maps']))}" if first.get("maps") else ""))
    items = "\n".join(_item(r, folder) for r in records)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>boda explain: {len(records)} images</title><style>{_STYLE}</style></head>"
        f"<body><header><h1>boda explain: {len(records)} images</h1><p>{about}</p></header>"
        f"<main>{_summary(summary, records)}<div class=\"filters\">{filters}</div>"
        f"{items}</main><script>{_SCRIPT}</script></body></html>\n"
    )


def write_gallery(records: list[dict[str, Any]], summary: dict[str, Any], folder: Path) -> Path:
    """Write :func:`gallery_html` to ``folder/index.html`` (atomically)."""
    from boda.io import write_output

    return write_output(folder / GALLERY_NAME, gallery_html(records, summary, folder))

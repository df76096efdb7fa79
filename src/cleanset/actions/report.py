"""``report.html``: one self-contained page about a run that nobody has to look away from.

It shows numbers, charts (inline SVG) and a table of flagged items by key; it never shows, embeds or links an image
and holds no bank value. Every string that came from outside (keys, shard ids, bank names, reasons) is escaped: in
HTML text with ``html.escape``, and in the embedded table data as JSON whose ``<``, ``>`` and ``&`` are written as
``\\u`` escapes so no key can close the script element. The page's script writes table cells with ``textContent``
only. There is no network access: no external script, style, font or link.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from cleanset.actions import charts

MAX_TABLE_ROWS = 100_000
# The page may load nothing from anywhere: only its own inline style and script run.
_CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'"
PAGE_SIZE = 50


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _json_for_script(obj: Any) -> str:
    text = json.dumps(obj, ensure_ascii=True, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _count(name: str, value: int, label: str) -> str:
    return (
        f'<div class="stat"><span class="num" id="count-{name}" data-count="{int(value)}">{int(value):,}</span>'
        f'<span class="label">{_e(label)}</span></div>'
    )


def _kv_table(rows: dict[str, Any], head: tuple[str, str], table_id: str) -> str:
    if not rows:
        return f'<p class="empty" id="{table_id}-empty">none</p>'
    body = "".join(
        f'<tr><td>{_e(k)}</td><td class="n" data-count="{int(v)}">{int(v):,}</td></tr>' for k, v in rows.items()
    )
    return (
        f'<table id="{table_id}"><thead><tr><th>{_e(head[0])}</th><th>{_e(head[1])}</th></tr></thead>'
        f"<tbody>{body}</tbody></table>"
    )


def _banks_table(banks: list[dict[str, Any]]) -> str:
    if not banks:
        return '<p class="empty">no banks</p>'
    rows = "".join(
        f"<tr><td>{_e(b.get('name'))}</td><td>{_e(b.get('version'))}</td><td>{'allow' if b.get('allow') else 'block'}"
        f'</td><td class="n">{_e(b.get("entry_count"))}</td><td><code>{_e(b.get("digest"))}</code></td>'
        f"<td>{_e(', '.join(f'{k}={v}' for k, v in (b.get('thresholds') or {}).items()))}</td></tr>"
        for b in banks
    )
    return (
        '<table id="banks"><thead><tr><th>list</th><th>version</th><th>kind</th><th>entries</th>'
        f"<th>content digest</th><th>thresholds</th></tr></thead><tbody>{rows}</tbody></table>"
    )


_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1180px;color:#1d2733;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #d5dbe3}
.meta{color:#5a6776}.stats{display:flex;gap:12px;flex-wrap:wrap;margin:16px 0}
.stat{background:#f1f4f8;border-radius:8px;padding:10px 16px;min-width:110px}
.stat .num{display:block;font-size:24px;font-weight:600}.stat .label{color:#5a6776}
table{border-collapse:collapse;margin:6px 0;font-size:13px}td,th{border-bottom:1px solid #e3e7ed;padding:4px 10px;
text-align:left;vertical-align:top}td.n{text-align:right;font-variant-numeric:tabular-nums}
code{font-size:12px;word-break:break-all}.grid{display:grid;grid-template-columns:1fr 1fr;gap:16px}
svg{max-width:100%;height:auto}.empty{color:#8893a0}.controls{display:flex;gap:8px;align-items:center;margin:8px 0}
input[type=search]{padding:5px 8px;width:320px}button{padding:4px 10px}.note{color:#8a5a00}
"""

_JS = """
(function(){
  var rows = JSON.parse(document.getElementById('flagged-data').textContent);
  var cols = ['key','shard','verdict','reason','bank','entry_id','distance'];
  var size = %(page)d, page = 0, shown = rows;
  var body = document.querySelector('#flagged tbody');
  var q = document.getElementById('flagged-search');
  var info = document.getElementById('flagged-info');
  var total = document.getElementById('flagged-total');
  total.textContent = rows.length.toLocaleString('en-US');
  total.setAttribute('data-count', String(rows.length));
  function render(){
    var pages = Math.max(1, Math.ceil(shown.length / size));
    if (page >= pages) page = pages - 1;
    while (body.firstChild) body.removeChild(body.firstChild);
    shown.slice(page * size, page * size + size).forEach(function(r){
      var tr = document.createElement('tr');
      cols.forEach(function(c){
        var td = document.createElement('td');
        td.textContent = r[c] === null || r[c] === undefined ? '' : String(r[c]);
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    info.textContent = shown.length ? ('rows ' + (page * size + 1) + '\\u2013' +
      Math.min(shown.length, page * size + size) + ' of ' + shown.length + ', page ' + (page + 1) + '/' + pages)
      : 'no rows';
    info.setAttribute('data-matching', String(shown.length));
  }
  function filter(){
    var s = q.value.toLowerCase();
    shown = !s ? rows : rows.filter(function(r){
      return cols.some(function(c){ return r[c] !== null && String(r[c]).toLowerCase().indexOf(s) >= 0; });
    });
    page = 0; render();
  }
  q.addEventListener('input', filter);
  // report.html#q=TEXT opens with the table filtered, so a link can point at one list's hits.
  if (location.hash.indexOf('#q=') === 0) { q.value = decodeURIComponent(location.hash.slice(3)); }
  document.getElementById('flagged-prev').addEventListener('click', function(){ if (page > 0) { page--; render(); } });
  document.getElementById('flagged-next').addEventListener('click', function(){
    if ((page + 1) * size < shown.length) { page++; render(); } });
  filter();
})();
"""


def render_html(data: dict[str, Any]) -> str:
    run, counts = data["run"], data["counts"]
    flagged = data["flagged"]
    table_rows = [
        {c: r[c] for c in ("key", "shard", "verdict", "reason", "bank", "entry_id", "distance")}
        for r in flagged[:MAX_TABLE_ROWS]
    ]
    cut = (
        f'<p class="note">Showing the first {MAX_TABLE_ROWS:,} of {len(flagged):,} flagged items; '
        "report.json has all of them.</p>"
        if len(flagged) > MAX_TABLE_ROWS
        else ""
    )
    pdq = data["pdq_distance"]
    prog = data["progress"]
    parts: list[str] = []
    parts.append(_count("items", counts["items"], "items scanned"))
    parts.append(_count("kept", counts["kept"], "kept"))
    parts.append(_count("removed", counts["removed"], "removed"))
    parts.append(_count("review", counts["review"], "for review"))
    parts.append(_count("failed", counts["failed"], "failed (not kept)"))
    stats = "".join(parts)
    rev = f", revision {_e(run['revision'])}" if run.get("revision") else ""
    score_charts = "".join(
        charts.histogram(h["edges"], h["items"], f"score: {name}", name) for name, h in data["scores"].items()
    )
    charts_block = f"""
<div class="grid">
<div>{
        charts.bar_chart(
            list(data["matches_by_bank"]), list(data["matches_by_bank"].values()), "matched items per list"
        )
    }</div>
<div>{
        charts.bar_chart(
            list(data["matches_by_probe"]), list(data["matches_by_probe"].values()), "matched items per probe"
        )
    }</div>
<div>{
        charts.histogram(
            pdq["distance"],
            pdq["items"],
            "closest PDQ distance of matched items",
            "Hamming distance (bits)",
            discrete=True,
        )
    }</div>
<div>{
        charts.bar_chart(
            list(data["failures_by_reason"]), list(data["failures_by_reason"].values()), "failures by reason"
        )
    }</div>
</div>
{
        charts.progress_chart(
            [p["seconds"] or 0.0 for p in prog],
            [p["cumulative_items"] for p in prog],
            [p["items"] for p in prog],
            "scan progress",
        )
    }
{('<h2>Screening scores</h2><div class="grid">' + score_charts + "</div>") if score_charts else ""}
"""
    doc = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{_CSP}">
<meta name="referrer" content="no-referrer">
<title>cleanset report</title><style>{_CSS}</style></head>
<body>
<h1>cleanset scan report</h1>
<p class="meta">cleanset {_e(run.get("cleanset_version"))}{rev} · {_e(run.get("format"))} source
{_e(", ".join(run.get("sources") or []))} · started {_e(run.get("started"))} · finished {_e(run.get("finished"))}
· fingerprint <code>{_e((run.get("fingerprint") or "")[:16])}</code></p>
<p class="meta">This report names items by key only. It contains no images, thumbnails or links to images, and no
values from any hash list.</p>
<div class="stats" id="counts">{stats}</div>
<h2>Lists checked</h2>{_banks_table(data["banks"])}
<h2>Matches</h2>
<div class="grid"><div><h3>per list</h3>{_kv_table(data["matches_by_bank"], ("list", "items"), "matches-by-bank")}</div>
<div><h3>per probe</h3>{_kv_table(data["matches_by_probe"], ("probe", "items"), "matches-by-probe")}</div></div>
<h2>Failures by reason</h2>{_kv_table(data["failures_by_reason"], ("reason", "items"), "failures")}
<h2>Charts</h2>{charts_block}
<h2>Removed and review items (<span id="flagged-total" data-count="">{len(table_rows):,}</span>)</h2>
{cut}
<div class="controls"><input type="search" id="flagged-search" placeholder="search key, shard, list, entry id…"
 aria-label="search flagged items"><button id="flagged-prev" type="button">previous</button>
<button id="flagged-next" type="button">next</button><span id="flagged-info"></span></div>
<table id="flagged"><thead><tr><th>key</th><th>shard</th><th>verdict</th><th>reason</th><th>list</th>
<th>entry id</th><th>distance</th></tr></thead><tbody></tbody></table>
<script type="application/json" id="flagged-data">{_json_for_script(table_rows)}</script>
<script>{_JS % {"page": PAGE_SIZE}}</script>
</body></html>
"""
    return doc


def write_report(run: Path, revision: int | None = None, json_out: bool = False) -> tuple[Path, dict[str, Any]]:
    """Write RUN/report.html (and RUN/report.json with ``json_out``); returns the HTML path and the data."""
    from cleanset.actions.report_data import build_report

    data = build_report(run, revision)
    out = run / "report.html"
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(render_html(data), encoding="utf-8")
    tmp.replace(out)
    if json_out:
        jp = run / "report.json"
        tmp = jp.with_name(jp.name + ".tmp")
        tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        tmp.replace(jp)
    return out, data

"""Inline CSS and JS of the HTML report (no network, no external fonts: the page must work offline)."""

from __future__ import annotations

from litdata.classes import TokenClass
from litdata.inspect.palette import PALETTE

_BASE_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#212529;background:#fafafa}
main{max-width:1240px;margin:0 auto;padding:16px 24px}
h1{font-size:22px;margin:8px 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #dee2e6}
.meta{color:#555;font-size:13px}
.figs{display:flex;flex-wrap:wrap;gap:10px}
.fig{background:#fff;border:1px solid #dee2e6;border-radius:6px;padding:8px 12px;min-width:130px}
.fig b{display:block;font-size:20px}.fig span{color:#666;font-size:12px}
table{border-collapse:collapse;background:#fff;margin:6px 0;font-size:13px}
th,td{border:1px solid #dee2e6;padding:3px 7px;vertical-align:top}th{background:#f1f3f5;text-align:left}
.scroll{overflow-x:auto}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.legend span.sw{display:inline-block;padding:1px 8px;margin:2px 6px 2px 0;border-radius:3px;cursor:pointer}
.controls{position:sticky;top:0;background:#fafafa;padding:6px 0;z-index:1;border-bottom:1px solid #dee2e6}
.controls input,.controls select{margin-right:12px;font:inherit}
article.doc{background:#fff;border:1px solid #dee2e6;border-radius:6px;margin:10px 0;padding:8px 12px}
article.doc header{font-size:12px;color:#555;margin-bottom:6px}article.doc header b{color:#212529}
.text{white-space:pre-wrap;word-wrap:break-word;font:13px/1.6 ui-monospace,Menlo,Consolas,monospace}
.text span.sup{text-decoration:underline;text-decoration-color:#555;text-underline-offset:3px}
.text .img{border:1px dashed #b03c8f;border-radius:3px;padding:0 4px}
.text .img img{max-height:48px;vertical-align:middle;margin-right:4px}
.text .wt{font-size:10px;vertical-align:super;color:#333}
body.focus .text span[class^=c-]{opacity:.3}
.hidden{display:none}
"""

JS = """
(function(){
  const q=document.getElementById('q'), src=document.getElementById('src'), hl=document.getElementById('hl');
  const docs=[...document.querySelectorAll('article.doc')], shown=document.getElementById('shown');
  function apply(){
    const needle=q.value.trim().toLowerCase(); let n=0;
    for(const d of docs){
      const ok=(!src.value||d.dataset.file===src.value)&&(!needle||d.dataset.id.toLowerCase().includes(needle)||
        d.textContent.toLowerCase().includes(needle));
      d.classList.toggle('hidden',!ok); if(ok) n++;
    }
    shown.textContent=n+' of '+docs.length+' documents';
  }
  function focus(){
    document.body.classList.toggle('focus',!!hl.value);
    for(const s of document.querySelectorAll('.text span[class^=c-]'))
      s.style.opacity=(hl.value&&s.classList.contains('c-'+hl.value))?'1':'';
  }
  q.addEventListener('input',apply); src.addEventListener('change',apply); hl.addEventListener('change',focus);
  for(const s of document.querySelectorAll('.legend span.sw'))
    s.addEventListener('click',()=>{hl.value=(hl.value===s.dataset.cls)?'':s.dataset.cls; focus();});
  apply();
})();
"""


def css() -> str:
    classes = "\n".join(f".c-{c.label}{{background:{PALETTE[c].css_bg}}}" for c in TokenClass)
    return _BASE_CSS + classes

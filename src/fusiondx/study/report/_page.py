"""The report page: every section in order, each drawn safely, in one self-contained HTML file
with inline CSS."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import warnings
from collections.abc import Callable
from pathlib import Path

from fusiondx.study import plots
from fusiondx.study.report._calibration import calibration_section
from fusiondx.study.report._context import Context, esc, note
from fusiondx.study.report._cost import cost_section
from fusiondx.study.report._data import config_section, data_section
from fusiondx.study.report._explain import explain_section
from fusiondx.study.report._fairness import fairness_section
from fusiondx.study.report._figures import (
    ablation_section,
    head_to_head_section,
    robustness_section,
    samples_section,
    training_section,
)
from fusiondx.study.report._ranking import ranking_section
from fusiondx.study.report._summary import summary_section

CSS = """
body{margin:0;background:#f3f4f6;color:#1f2933;font:16px/1.55 -apple-system,"Segoe UI",Roboto,
"Helvetica Neue",Arial,"DejaVu Sans",sans-serif}
main{max-width:1100px;margin:24px auto;background:#fff;padding:28px 40px 20px;border-radius:10px;
box-shadow:0 1px 4px rgba(0,0,0,.08)}
h1{font-size:28px;margin:0 0 4px}h2{font-size:21px;margin:40px 0 10px;padding-bottom:6px;
border-bottom:2px solid #e5e7eb}h3{font-size:17px;margin:24px 0 6px}
.sub{color:#616e7c;margin:0 0 14px}nav{font-size:14px;margin-bottom:18px}
nav a{color:#3559a8;text-decoration:none;margin-right:16px;white-space:nowrap;line-height:1.9}
.verdict{border-left:6px solid;padding:14px 18px;border-radius:6px;font-size:18px;margin:8px 0 12px}
.good{border-color:#1a7f4b;background:#eaf7ef}.meh{border-color:#c58a00;background:#fff7e0}
.bad{border-color:#b42318;background:#fdecea}
ul.facts{margin:6px 0 0;padding-left:22px;color:#323f4b}ul.facts li{margin:3px 0}
img{max-width:100%;height:auto;display:block;margin:10px auto}
figure{margin:14px 0}figcaption{color:#616e7c;font-size:14px;text-align:center}
.tw{overflow-x:auto}table{border-collapse:collapse;font-size:13.5px;margin:8px 0;width:100%;
font-variant-numeric:tabular-nums}
th,td{padding:6px 6px;border-bottom:1px solid #e5e7eb;text-align:right;vertical-align:top}
th{background:#f8f9fb;font-weight:600;color:#323f4b;border-bottom:2px solid #d2d6dc}
td.l,th.l{text-align:left}small.warn{color:#b42318;display:block}td small,.ci{display:block;color:#7b8794;font-size:12px}
.ci{white-space:nowrap}td.l small{max-width:220px}td .pc{color:#7b8794;font-size:12px}
tr.win td{background:#fff6d9}tr.best td{background:#eef4ff}th.pm,td.pm{font-weight:600}
.kind{display:inline-block;padding:1px 7px;border-radius:9px;color:#fff;font-size:12px}
.note{color:#7b8794;font-style:italic}table.narrow{width:auto;min-width:45%}
pre{background:#f8f9fb;border:1px solid #e5e7eb;padding:12px;font-size:13px;overflow-x:auto}
footer{margin-top:36px;padding-top:10px;border-top:1px solid #e5e7eb;color:#7b8794;font-size:13px}
"""

SectionFn = Callable[[Context], str]

SECTIONS: list[tuple[str, str, SectionFn]] = [
    ("summary", "Summary", summary_section),
    ("ranking", "Ranked comparison", ranking_section),
    ("head", "Winner vs best single modality", head_to_head_section),
    ("samples", "Samples", samples_section),
    ("ablation", "Ablation: which modality matters", ablation_section),
    ("robustness", "Robustness to missing modalities", robustness_section),
    ("cost", "Accuracy vs computational cost", cost_section),
    ("explain", "Which modality drives the prediction", explain_section),
    ("calibration", "Calibration and triage", calibration_section),
    ("fairness", "Fairness by subgroup", fairness_section),
    ("training", "Training curves", training_section),
    ("data", "Data", data_section),
    ("config", "Configuration", config_section),
]


def _safe(fn: SectionFn, c: Context, title: str) -> str:
    try:
        return fn(c)
    except Exception as err:  # a malformed optional part must not lose the whole report
        warnings.warn(f"study report: section {title!r} could not be drawn: {err!r}", stacklevel=2)
        return note(f"This section could not be drawn ({type(err).__name__}: {err}).")


def write_report(results: dict, out: Path) -> Path:
    """Render ``results`` to a self-contained HTML page at ``out``; returns ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    c = Context(results)
    out = Path(out)
    with plt.rc_context(plots.STYLE):
        secs = [(sid, title, _safe(fn, c, title)) for sid, title, fn in SECTIONS]
    try:  # the installed distribution's version, without importing the package's top layer
        version = importlib.metadata.version("fusiondx")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree that is not installed
        version = "dev"
    nav = " ".join(f'<a href="#{sid}">{i}. {esc(t)}</a>' for i, (sid, t, _) in enumerate(secs, 1))
    body = "".join(
        f'<section id="{sid}"><h2>{i}. {esc(t)}</h2>{h}</section>'
        for i, (sid, t, h) in enumerate(secs, 1)
    )
    name = c.study.get("name") or "study"
    task = c.study.get("task_type") or ""
    classes = ", ".join(map(str, c.study.get("classes") or []))
    sub = " · ".join(
        x
        for x in (
            f"task {c.study.get('task', '')} ({task})" if task else "",
            f"classes: {classes}" if classes else "",
            f"created {c.study.get('created', '')}" if c.study.get("created") else "",
        )
        if x
    )
    now = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    page = (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>FusionDx study: {esc(name)}</title><style>{CSS}</style></head><body><main>"
        f'<h1>FusionDx study: {esc(name)}</h1><p class="sub">{esc(sub)}</p><nav>{nav}</nav>'
        f"{body}<footer>FusionDx {esc(version)} · report generated {now} · results: "
        f"<code>{esc(c.study.get('results_path') or 'n/a')}</code></footer></main>"
        "</body></html>"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out

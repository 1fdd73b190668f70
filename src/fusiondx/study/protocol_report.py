"""The report of a protocol study (:mod:`fusiondx.study.protocols`): one chart, one table, the answer."""

from __future__ import annotations

import datetime as _dt
import html
from pathlib import Path
from typing import Any

import numpy as np

from fusiondx.study.plots import PALETTE, STYLE, figure_uri
from fusiondx.study.plots._style import subplots

CSS = """body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{padding:4px 10px;border-bottom:1px solid #ddd;
text-align:right}td:first-child,th:first-child{text-align:left}.note{color:#666;font-size:90%}
.answer{font-size:120%;margin:1em 0}img{max-width:100%}"""


def _ci(s: dict[str, Any] | None, fmt: str = ".3f") -> str:
    if not s:
        return "-"
    return f"{s['mean']:{fmt}} [{s['low']:{fmt}}, {s['high']:{fmt}}]"


def _label_chart(r: dict[str, Any]) -> str:
    import matplotlib.pyplot as plt

    with plt.rc_context(STYLE):
        fig, ax = subplots(figsize=(6.4, 3.8))
        for i, arm in enumerate(("scratch", "pretrained")):
            rows = [row for row in r["rows"] if arm in row]
            x = [row["fraction"] for row in rows]
            y = [row[arm]["mean"] for row in rows]
            lo = [row[arm]["low"] for row in rows]
            hi = [row[arm]["high"] for row in rows]
            ax.plot(x, y, marker="o", color=PALETTE[i], label=arm)
            ax.fill_between(x, lo, hi, color=PALETTE[i], alpha=0.18)
        ax.set_xscale("log")
        ax.set_xticks([row["fraction"] for row in r["rows"]])
        ax.set_xticklabels([f"{row['fraction']:.0%}" for row in r["rows"]])
        ax.set_xlabel("share of the training labels")
        ax.set_ylabel(f"test {r['metric']} (95% CI)")
        ax.legend(frameon=False)
        fig.tight_layout()
        return figure_uri(fig)


def _missing_chart(r: dict[str, Any]) -> str:
    import matplotlib.pyplot as plt

    shares = r["shares"]
    strategies = r["strategies"]
    with plt.rc_context(STYLE):
        fig, axes = subplots(1, len(shares), figsize=(3.4 * len(shares), 3.4), sharey=True)
        axes = np.atleast_1d(axes)
        for ax, share in zip(axes, shares, strict=True):
            for i, s in enumerate(strategies):
                e = next(
                    (e for e in r["entries"] if e["strategy"] == s and e["train_missing"] == share),
                    None,
                )
                if e is None:
                    continue
                curves = e["curves"]
                mods = [m for m in curves if m != "rates"]
                mean = np.nanmean([curves[m] for m in mods], axis=0)
                ax.plot(curves["rates"], mean, marker=".", color=PALETTE[i % len(PALETTE)], label=s)
            ax.set_title(f"trained with {share:.0%} missing", fontsize=10)
            ax.set_xlabel("share of test cases missing a modality")
        axes[0].set_ylabel(f"test {r['metric']}, mean over modalities")
        axes[-1].legend(frameon=False, fontsize=8)
        fig.tight_layout()
        return figure_uri(fig)


def _label_body(r: dict[str, Any]) -> str:
    rows = []
    wins = []
    for row in r["rows"]:
        d = row.get("difference")
        diff = "-"
        if d:
            diff = f"{d['difference']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]"
            if d["low"] > 0:
                wins.append(row["fraction"])
        rows.append(
            f"<tr><td>{row['fraction']:.0%}</td>"
            f"<td>{row.get('scratch', {}).get('train_cases', '-')}</td>"
            f"<td>{_ci(row.get('scratch'))}</td><td>{_ci(row.get('pretrained'))}</td>"
            f"<td>{diff}</td></tr>"
        )
    answer = (
        f"Pretraining helped, with a CI above zero, at {', '.join(f'{w:.0%}' for w in wins)} of the labels."
        if wins
        else "At no label fraction is the pretrained model better with a CI above zero."
    )
    retrieval = ""
    if r.get("retrieval"):
        items = "".join(
            f"<tr><td>{html.escape(k)}</td><td>{v['n']}</td>"
            f"<td>{v['recall@10']['value']:.2f} [{v['recall@10']['low']:.2f}, {v['recall@10']['high']:.2f}]</td>"
            f"<td>{v['recall@10']['chance']:.2f}</td><td>{v['median_rank']['value']:.0f}</td>"
            f"<td>{v['median_rank']['chance']:.0f}</td></tr>"
            for k, v in r["retrieval"].items()
        )
        retrieval = (
            "<h2>Retrieval in the pretrained shared space (test cases)</h2><table><tr><th>direction"
            "</th><th>cases</th><th>Recall@10 [95% CI]</th><th>chance</th><th>median rank</th>"
            f"<th>chance</th></tr>{items}</table>"
        )
    return (
        f"<p class=answer>{answer}</p><img src='{_label_chart(r)}' alt='label efficiency'>"
        f"<table><tr><th>labels</th><th>training cases</th><th>scratch</th><th>pretrained</th>"
        f"<th>pretrained - scratch (paired bootstrap)</th></tr>{''.join(rows)}</table>"
        f"<p class=note>Test {r['metric']} with 95% bootstrap CIs over the same test cases at "
        f"every fraction, pooled over {r['seeds']} seed(s). Encoders: {html.escape(r['encoders'])}.</p>"
        + retrieval
    )


def _missing_body(r: dict[str, Any]) -> str:
    best = r.get("most_robust")
    answer = (
        f"Most robust: <b>{html.escape(best['strategy'])}</b> trained with "
        f"{best['train_missing']:.0%} missing (mean test {r['metric']} {best['robustness']:.3f} over "
        "every modality removed from 0-100% of the test cases)."
        if best
        else "No entry finished."
    )
    rows = "".join(
        f"<tr><td>{html.escape(e['strategy'])}</td><td>{e['train_missing']:.0%}</td>"
        f"<td>{_ci(e['test'])}</td><td>{e['robustness']:.3f}</td><td>{e['worst']:.3f}</td></tr>"
        for e in sorted(r["entries"], key=lambda e: -e["robustness"])
    )
    return (
        f"<p class=answer>{answer}</p><img src='{_missing_chart(r)}' alt='missing modalities'>"
        "<table><tr><th>strategy</th><th>trained missing</th><th>complete test [95% CI]</th>"
        "<th>robustness (mean under missingness)</th><th>worst (one modality gone)</th></tr>"
        f"{rows}</table><p class=note>Read off the test cases: it describes how each model degrades "
        "and plays no part in choosing a model.</p>"
    )


def write_protocol_report(results: dict[str, Any], path: Path) -> Path:
    """Write the protocol's self-contained HTML report to ``path``."""
    protocol = results["protocol"]
    if protocol == "sites":
        from fusiondx.study.sites_report import sites_body

        title, body = "Shift across sites: leave one site out", sites_body(results)
    elif protocol == "label_efficiency":
        title, body = "Label efficiency: pretrained vs scratch", _label_body(results)
    else:
        title, body = "Training with missing modalities", _missing_body(results)
    when = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    path.write_text(
        f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title><style>{CSS}</style>"
        f"<h1>{html.escape(title)}</h1><p class=note>Study '{html.escape(results['study'])}', task "
        f"'{html.escape(results['task'])}', generated {when}.</p>{body}",
        encoding="utf-8",
    )
    return path

"""The ranked table as GitHub Markdown (``table.md``) and CSV (``table.csv``)."""

from __future__ import annotations

import csv
import html
import math
from pathlib import Path
from typing import Any

from fusiondx.study.plots import num
from fusiondx.study.report._format import (
    all_metrics,
    fmt,
    fmt_ci,
    fmt_count,
    metric_name,
    ranked,
    replicates,
    selection,
    stat,
    table_metrics,
)


def _md(s: Any) -> str:
    return html.escape(str(s), quote=False).replace("|", "\\|").replace("\n", " ")


def write_tables(results: dict, out_dir: Path) -> tuple[Path, Path]:
    """``table.md`` (GitHub Markdown, ranked) and ``table.csv`` (one row per entry)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    study = results.get("study") or {}
    pm = study.get("primary_metric", "auroc")
    ents = ranked(results)
    ms = table_metrics(results)
    head = [
        "#",
        "Entry",
        "Kind",
        *(metric_name(m) for m in ms),
        "Parameters",
        "FLOPs per case",
        "Train time (s)",
    ]
    lines = [
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---:", ":---", ":---"] + ["---:"] * (len(head) - 3)) + "|",
    ]
    for rank, e in enumerate(ents, 1):
        star = " ★" if e.get("id") == results.get("winner") else ""
        star += " ⚠" if e.get("flags") else ""
        cells = [
            str(rank),
            _md(e.get("label", e.get("id"))) + star,
            _md(e.get("kind", "")),
            *(fmt_ci(stat(e, m)) for m in ms),
            fmt_count(e.get("n_parameters")),
            fmt_count(e.get("flops_per_case"), "FLOP"),
            fmt(e.get("train_seconds"), 1),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    n_test = study.get("n_test")
    cases = f" ({n_test} cases)" if n_test is not None else ""
    over = (
        f"Pooled out-of-fold predictions of {study['folds']} folds"
        if study.get("folds")
        else f"Mean over {replicates(study)}"
    )
    lines += [
        "",
        f"{over} on the test split{cases} with 95% CI: bootstrap over test cases "
        f"({study.get('n_boot', 'n/a')} resamples); references fitted once per split. Sorted "
        f"by test {metric_name(pm)}; ★ winner, chosen on {selection(study)}.",
    ]
    for e in ents:
        if e.get("flags"):
            lines.append(f"⚠ {_md(e.get('label', e.get('id')))}: {_md('; '.join(e['flags']))}.")
    for a in results.get("references_absent") or []:
        lines.append(f"Not run: {_md(a['label'])} ({_md(a['why'])}).")
    verdict = results.get("verdict") or {}
    if verdict.get("headline"):
        lines += ["", f"**{_md(verdict['headline'])}**"] + [
            f"- {_md(x)}" for x in verdict.get("lines") or []
        ]
    lines.append("")
    md = out_dir / "table.md"
    md.write_text("\n".join(lines), encoding="utf-8")
    cols = ["id", "label", "kind", "fusion", "level", "modalities"]
    allm = all_metrics(results)
    cols += [f"{m}_{k}" for m in allm for k in ("mean", "low", "high")]
    cols += ["n_parameters", "flops_per_case", "train_seconds", f"val_{pm}"]
    path = out_dir / "table.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        for e in ents:
            row = {k: e.get(k, "") for k in ("id", "label", "kind", "fusion", "level")}
            row["modalities"] = ";".join(map(str, e.get("modalities") or []))
            for m in allm:
                row.update({f"{m}_{k}": _csv_num(v) for k, v in stat(e, m).items()})
            for k in ("n_parameters", "flops_per_case", "train_seconds"):
                row[k] = _csv_num(num(e.get(k)), integer=k == "n_parameters")
            row[f"val_{pm}"] = _csv_num(num((e.get("val") or {}).get(pm)))
            w.writerow({k: "" if v is None else v for k, v in row.items()})
    return md, path


def _csv_num(v: float, integer: bool = False) -> str:
    if math.isnan(v):
        return ""
    return str(int(v)) if integer and v.is_integer() else repr(v)

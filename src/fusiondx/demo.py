"""`make demo`: the study on the built-in cohort — does fusion help, which fusion, and why."""

from __future__ import annotations

import copy
import sys
import time
from pathlib import Path
from typing import Any, TypedDict

import yaml
from rich.console import Console, JustifyMethod
from rich.markup import escape
from rich.table import Table

from fusiondx.config import load_config

# Sized for a few minutes per seed on a 2-core CPU: 32x32 images without augmentation, ECGs at
# 50 Hz. Up to 20 epochs with patience 4: enough that no model's comparison is decided by the
# epoch cap (at 8 epochs most models were still improving when they were stopped).
DEMO_CONFIG: dict[str, Any] = {
    "name": "demo",
    "seed": 0,
    "output_dir": "runs",
    # site: where the image was taken (each site's scanner looks different); the metadata probe
    # checks that it does not tell the label.
    "data": {
        "manifest": "cohort/manifest.csv",
        "id_column": "case_id",
        "patient_column": "patient_id",
        "metadata_columns": ["site"],
    },
    "modalities": [
        {
            "name": "cxr",
            "kind": "image",
            "column": "image",
            "preprocessing": {"size": [32, 32]},
            "encoder": {"name": "cnn"},
        },
        {
            "name": "ecg",
            "kind": "signal",
            "column": "ecg",
            "preprocessing": {"rate": 50, "length": 500},
            "encoder": {"name": "cnn1d"},
        },
        {
            "name": "report",
            "kind": "text",
            "column": "report",
            "preprocessing": {"tokenizer": "wordpiece", "vocab_size": 1000, "max_length": 48},
            "encoder": {"name": "text_transformer"},
        },
        {
            "name": "labs",
            "kind": "tabular",
            "columns": [
                "age",
                "sex",
                "crp",
                "troponin",
                "bnp",
                "wbc",
                "spo2",
                "heart_rate_vitals",
                "smoker",
            ],
            "categorical": ["sex", "smoker"],
            "encoder": {"name": "mlp"},
        },
    ],
    "fusion": {"name": "concat", "dim": 64},
    "tasks": [{"name": "diagnosis", "label": "label", "classes": ["healthy", "disease"]}],
    "train": {
        "epochs": 20,
        "batch_size": 32,
        "lr": 1e-3,
        "early_stopping": {"monitor": "auroc", "patience": 4},
        "progress": False,
    },
    # Scored by subgroup in the study report (never model inputs beyond the labs' age and sex).
    "fairness": {
        "columns": ["sex", "age_band", "site"],
        "min_size": 30,
        "bands": {"age_band": {"column": "age", "edges": [40, 65]}},
    },
}

# A spread of the catalog that fits a few-minute budget on a 2-core CPU: feature-level
# (concat, attention over modalities, gated units, low-rank tensor), token-level, decision-level
# and input-level fusion. `fusiondx study demo_out/study.yaml --strategies all` runs every one.
STRATEGIES = ["concat", "attention", "gated", "low_rank_tensor", "late_average", "early_concat"]


class QuickSettings(TypedDict):
    """What `fusiondx demo --quick` changes: ``run_demo``'s keywords."""

    cases: int
    epochs: int
    seeds: int
    strategies: list[str]
    n_boot: int


QUICK: QuickSettings = {
    "cases": 400,
    "epochs": 3,
    "seeds": 2,
    "strategies": ["concat", "late_average"],
    "n_boot": 200,
}


def demo_config(
    *, epochs: int, seeds: int, strategies: list[str], n_boot: int = 1000
) -> dict[str, Any]:
    cfg = copy.deepcopy(DEMO_CONFIG)
    cfg["train"]["epochs"] = epochs
    cfg["study"] = {"strategies": strategies, "seeds": seeds, "n_boot": n_boot, "jobs": 2}
    return cfg


def run_demo(
    out: Path,
    *,
    cases: int,
    epochs: int,
    seeds: int,
    strategies: list[str],
    n_boot: int = 1000,
    jobs: int = 2,
    console: Console,
) -> Any:
    from fusiondx.datasets.synthetic import make_cohort
    from fusiondx.study.study import run_study

    out.mkdir(parents=True, exist_ok=True)
    console.rule("FusionDx demo: does fusion help on the built-in cohort?")
    t0 = time.perf_counter()
    manifest = make_cohort(out / "cohort", n_cases=cases, seed=0, progress=True)
    console.print(
        f"Built-in cohort: {cases} cases -> {manifest} ({time.perf_counter() - t0:.0f} s)"
    )
    raw = demo_config(epochs=epochs, seeds=seeds, strategies=strategies, n_boot=n_boot)
    cfg_path = out / "study.yaml"
    cfg_path.write_text(yaml.safe_dump(raw, sort_keys=False))
    result = run_study(load_config(cfg_path), out / "study", jobs=jobs, console=console)
    _print_table(result.results, console)
    console.print(
        f"Total {(time.perf_counter() - t0) / 60:.1f} min. The study config is {cfg_path}; "
        f"rerun or extend it with `fusiondx study {cfg_path} --strategies all`."
    )
    _open(result.report, console)
    return result


def _print_table(results: dict[str, Any], console: Console) -> None:
    metric = results["study"]["primary_metric"]
    table = Table(
        title=f"Test {metric.upper()} on the built-in cohort (mean over seeds, 95% CI; "
        f"same test cases for every model)"
    )
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("model", "left"),
        ("kind", "left"),
        (metric.upper(), "right"),
        ("95% CI", "right"),
        ("F1", "right"),
        ("params", "right"),
        ("train s", "right"),
    )
    for col, just in columns:
        table.add_column(col, justify=just, no_wrap=col == "model")
    for e in results["entries"]:
        m = e["test"][metric]
        star = " *" if e["id"] == results["winner"] else ""
        params = f"{e['n_parameters'] / 1000:.0f}k" if e.get("n_parameters") else "–"
        table.add_row(
            e["label"] + star,
            e["kind"],
            f"{m['mean']:.3f}",
            f"[{m['low']:.3f}, {m['high']:.3f}]",
            f"{e['test']['f1']['mean']:.3f}",
            params,
            f"{e['train_seconds']:.0f}",
        )
    # A pipe or a CI log reports 80 columns; the table needs a little more to stay on one line.
    wide = console if console.is_terminal else Console(width=max(console.width, 110))
    wide.print(table)
    console.print(
        "* winner, chosen on validation data; reference: a scikit-learn model on the same "
        "split; probe: a model that should not do well (a shortcut detector)"
    )
    console.print(f"[bold]{escape(results['verdict']['headline'])}[/]", highlight=False)


def _open(report: Path, console: Console) -> None:
    """Open the report in a browser when a person is at a terminal; always print where it is."""
    console.print(f"Report: [bold]{report}[/] (open file://{report} in a browser)")
    if sys.stdout.isatty():
        import webbrowser

        try:
            webbrowser.get()
        except webbrowser.Error:
            return  # no browser on this machine (a server, CI)
        webbrowser.open(report.as_uri())

"""The study report: self-contained HTML, Markdown and CSV tables, robust to missing parts."""

from __future__ import annotations

import copy
import math
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from fusiondx.study.report import write_report, write_tables
from fusiondx.study.verdict import decide

MODS = ["cxr", "ecg", "labs", "report"]
SINGLE_LABELS = {"cxr": "image cxr", "ecg": "ECG", "labs": "labs", "report": "report text"}
FUSIONS = [
    ("concat", "intermediate"),
    ("attention", "intermediate"),
    ("late_average", "late"),
    ("gated", "intermediate"),
    ("cross_attention", "intermediate"),
    ("early", "early"),
]
METRICS = [
    "auroc",
    "auprc",
    "precision",
    "accuracy",
    "f1",
    "recall",
    "balanced_accuracy",
    "specificity",
]
IMG = "data:image/png;base64,"


def _stat(rng: np.random.Generator, mean: float, seeds: int = 3) -> dict[str, Any]:
    mean = float(np.clip(mean, 0.05, 0.995))
    half = float(rng.uniform(0.015, 0.04))
    per_seed = [float(np.clip(mean + rng.normal(0, 0.01), 0, 1)) for _ in range(seeds)]
    return {
        "mean": mean,
        "low": max(0.0, mean - half),
        "high": min(1.0, mean + half * 0.8),
        "per_seed": per_seed,
    }


def _entry(
    rng: np.random.Generator,
    eid: str,
    label: str,
    kind: str,
    fusion: str | None,
    level: str | None,
    mods: list[str],
    auroc: float,
) -> dict[str, Any]:
    test = {"auroc": _stat(rng, auroc), "auprc": _stat(rng, auroc - rng.uniform(0.01, 0.05))}
    for m in METRICS[2:]:
        test[m] = _stat(rng, auroc - rng.uniform(0.04, 0.12))
    return {
        "id": eid,
        "label": label,
        "kind": kind,
        "fusion": fusion,
        "level": level,
        "modalities": mods,
        "n_parameters": int(rng.integers(40_000, 3_000_000)),
        "flops_per_case": float(rng.uniform(1e6, 9e7)),
        "train_seconds": float(rng.uniform(8, 120)),
        "val": {m: test[m]["mean"] + float(rng.normal(0, 0.01)) for m in test},
        "test": test,
        "runs": [{"seed": s, "run_dir": f"runs/{eid}/seed{s}"} for s in range(3)],
    }


def _curves(rng: np.random.Generator, k: float, sharp: float, n: int = 420) -> dict[str, Any]:
    """Curves of a model whose true risk is sigmoid(k z); it reports sigmoid(sharp * logit)."""
    logit = k * rng.normal(0, 1, n) - 0.3
    y = rng.random(n) < 1 / (1 + np.exp(-logit))
    score = 1 / (1 + np.exp(-sharp * logit))
    order = np.argsort(-score)
    ys = y[order]
    tp, fp = np.cumsum(ys), np.cumsum(~ys)
    tpr, fpr = np.r_[0, tp / y.sum()], np.r_[0, fp / (~y).sum()]
    prec = tp / np.arange(1, n + 1)
    rec = tp / y.sum()
    bins = np.linspace(0, 1, 11)
    idx = np.clip(np.digitize(score, bins) - 1, 0, 9)
    keep = [b for b in range(10) if (idx == b).any()]
    return {
        "roc": {"fpr": fpr.tolist(), "tpr": tpr.tolist(), "auc": float(np.trapezoid(tpr, fpr))},
        "pr": {
            "recall": rec.tolist(),
            "precision": prec.tolist(),
            "ap": float(np.sum(np.diff(np.r_[0, rec]) * prec)),
        },
        "calibration": {
            "mean_predicted": [float(score[idx == b].mean()) for b in keep],
            "fraction_positive": [float(y[idx == b].mean()) for b in keep],
            "count": [int((idx == b).sum()) for b in keep],
        },
        "histogram": {"edges": bins.tolist(), "counts": np.bincount(idx, minlength=10).tolist()},
    }


def sample_results(seed: int = 0, fusion_wins: bool = True) -> dict[str, Any]:
    """A realistic study: 4 single, 6 fusion, 4 ablation entries over 4 modalities."""
    rng = np.random.default_rng(seed)
    singles = dict(zip(MODS, [0.89, 0.81, 0.77, 0.84], strict=True))
    if not fusion_wins:
        singles["cxr"] = 0.95
    entries = [
        _entry(rng, f"single_{m}", SINGLE_LABELS[m], "single", None, None, [m], a)
        for m, a in singles.items()
    ]
    top = 0.97 if fusion_wins else 0.93
    for j, (f, level) in enumerate(FUSIONS):
        entries.append(
            _entry(
                rng,
                f"fusion_{f}",
                f,
                "fusion",
                f,
                level,
                list(MODS),
                top - 0.012 * j - rng.uniform(0, 0.01) * (j > 0),
            )
        )
    drops = {"cxr": 0.07, "ecg": 0.02, "labs": 0.01, "report": 0.03}
    for m, dr in drops.items():
        entries.append(
            _entry(
                rng,
                f"ablation_concat_minus_{m}",
                f"concat without {m}",
                "ablation",
                "concat",
                "intermediate",
                [x for x in MODS if x != m],
                top - dr,
            )
        )
    entries.sort(key=lambda e: -e["test"]["auroc"]["mean"])
    by = {e["id"]: e for e in entries}
    win, best = "fusion_concat", "single_cxr"
    stat3 = {k: v for k, v in by[win]["test"]["auroc"].items() if k != "per_seed"}
    diff = by[win]["test"]["auroc"]["mean"] - by[best]["test"]["auroc"]["mean"]
    n_ep = 25
    ep = list(range(n_ep))

    def tcurve(final: float) -> dict[str, list[float]]:
        t = np.arange(n_ep)
        return {
            "epoch": ep,
            "train_loss": (0.7 * np.exp(-t / 6) + 0.1).tolist(),
            "val_loss": (0.6 * np.exp(-t / 7) + 0.22 + 0.004 * np.maximum(t - 14, 0)).tolist(),
            "val_auroc": (final - 0.35 * np.exp(-t / 4) + rng.normal(0, 0.004, n_ep)).tolist(),
        }

    n_test = 300
    return with_verdict(
        {
            "study": {
                "name": "cardio-pulmonary demo",
                "created": "2025-05-01T10:12:00",
                "task": "diagnosis",
                "task_type": "binary",
                "classes": ["healthy", "disease"],
                "primary_metric": "auroc",
                "seeds": [0, 1, 2],
                "folds": None,
                "n_boot": 1000,
                "selection": "val/auroc",
                "config_yaml": "name: demo\nseed: 0\nmodalities:\n  - name: cxr\n"
                "    encoder: image_resnet\nfusion: <concat & friends>\n",
                "results_path": "studies/demo/results.json",
            },
            "data": {
                "splits": {
                    s: {
                        "cases": n,
                        "classes": {"healthy": int(n * 0.57), "disease": n - int(n * 0.57)},
                    }
                    for s, n in (("train", 1050), ("val", 225), ("test", n_test))
                },
                "availability": {
                    m: {
                        s: float(np.round(rng.uniform(0.8, 1.0), 2))
                        for s in ("train", "val", "test")
                    }
                    for m in MODS
                },
            },
            "entries": entries,
            "winner": win,
            "best_single": best,
            "comparison": {
                "metric": "auroc",
                "a": win,
                "b": best,
                "difference": diff,
                "low": diff - 0.03,
                "high": diff + 0.03,
                "p_value": 0.001 if fusion_wins else 0.04,
                "n_boot": 1000,
                "method": "paired bootstrap over test cases, pooled over 3 seeds",
                "delong": {"z": 4.1, "p_value": 4e-5},
            },
            "curves": {
                win: _curves(rng, 5.5 if fusion_wins else 3.6, 1.3),
                best: _curves(rng, 2.6 if fusion_wins else 4.4, 0.85),
            },
            "confusion_matrix": {
                "entry": win,
                "labels": ["healthy", "disease"],
                "matrix": [[150, 21], [14, 115]],
            },
            "ablation": {
                "entry": win,
                "metric": "auroc",
                "full": stat3,
                "without": {
                    m: {
                        **{
                            k: v
                            for k, v in by[f"ablation_concat_minus_{m}"]["test"]["auroc"].items()
                            if k != "per_seed"
                        },
                        "id": f"ablation_concat_minus_{m}",
                    }
                    for m in MODS
                },
                "only": {
                    m: {
                        **{
                            k: v
                            for k, v in by[f"single_{m}"]["test"]["auroc"].items()
                            if k != "per_seed"
                        },
                        "id": f"single_{m}",
                    }
                    for m in MODS
                },
            },
            "robustness": {
                "metric": "auroc",
                "removed": {
                    win: {
                        "none": stat3["mean"],
                        **{m: stat3["mean"] - d * 1.3 for m, d in drops.items()},
                    },
                    best: {
                        "none": by[best]["test"]["auroc"]["mean"],
                        "cxr": math.nan,
                        "ecg": by[best]["test"]["auroc"]["mean"],
                        "labs": by[best]["test"]["auroc"]["mean"],
                        "report": by[best]["test"]["auroc"]["mean"],
                    },
                },
                "missing_rate": {
                    win: {
                        "rates": [0, 0.25, 0.5, 0.75, 1.0],
                        **{
                            m: [stat3["mean"] - d * 1.3 * r for r in (0, 0.25, 0.5, 0.75, 1)]
                            for m, d in drops.items()
                        },
                    },
                    best: {"rates": [0, 0.25, 0.5, 0.75, 1.0], "cxr": [0.89, 0.79, 0.69, 0.6, 0.5]},
                },
            },
            "training_curves": {win: tcurve(0.95), best: tcurve(0.88)},
            "calibration": _calibration(rng, win, best),
        }
    )


def full_results() -> dict[str, Any]:
    """The sample results with the fairness tables and modality explanations too (what the
    full-report tests read)."""
    r = sample_results()
    r["fairness"] = sample_fairness(np.random.default_rng(5), (r["winner"], r["best_single"]))
    r["explain"] = sample_explain((r["winner"], r["best_single"]))
    return r


def sample_explain(ids: tuple[str, ...]) -> dict[str, Any]:
    """Modality importance as the study writes it: the Shapley values are computed exactly from
    a made-up additive game over the modalities (each modality's own contribution)."""
    import torch

    from fusiondx.explanations.shapley import shapley_from_values, subsets

    mods = ["cxr", "ecg", "labs", "report"]
    weight = torch.tensor([0.25, 0.1, 0.05, 0.15], dtype=torch.float64)
    values = 0.3 + (subsets(len(mods)).double() * weight).sum(1, keepdim=True).T  # (1, 2^M)
    phi = dict(zip(mods, shapley_from_values(values)[0].tolist(), strict=True))
    entries = {
        eid: {
            "mean_abs": {m: abs(v) * (1 - 0.2 * k) for m, v in phi.items()},
            "mean": {m: v * (1 - 0.2 * k) for m, v in phi.items()},
            "present": {m: 0.9 for m in mods},
            "permutation": {
                m: {"mean": v / 2, "low": v / 4, "high": 3 * v / 4} for m, v in phi.items()
            },
        }
        for k, eid in enumerate(ids)
    }
    return {"entries": entries, "metric": "auroc", "repeats": 10, "explained": "P(disease)"}


def sample_fairness(rng: np.random.Generator, ids: tuple[str, ...]) -> dict[str, Any]:
    """Subgroup tables as the study writes them, computed from made-up predictions: sex, an age
    band with a one-class subgroup, and a site too small to count."""
    from fusiondx.evaluation.fairness import subgroup_metrics

    n = 300
    y = rng.integers(0, 2, n)
    cols = {
        "sex": np.where(rng.random(n) < 0.5, "F", "M"),
        "age_band": np.where(
            np.arange(n) < 20, "<40", np.where(rng.random(n) < 0.5, "40-64", ">=65")
        ),
        "site": np.where(
            np.arange(n) >= n - 12, "site_C", np.where(rng.random(n) < 0.5, "site_A", "site_B")
        ),
    }
    y[:20] = 0  # every <40 case healthy: its AUROC is undefined
    entries = {}
    for k, eid in enumerate(ids):
        p = np.clip(0.5 + (0.3 - 0.1 * k) * (2 * y - 1) + rng.normal(0, 0.25, n), 0, 1)
        p = np.where(cols["sex"] == "F", np.clip(p + rng.normal(0, 0.2, n), 0, 1), p)
        tables = {
            c: subgroup_metrics(
                y,
                [p],
                [(p >= 0.5).astype(int)],
                g,
                task_type="binary",
                classes=["healthy", "disease"],
                metrics=["auroc", "accuracy"],
                min_size=30,
                n_boot=100,
            )
            for c, g in cols.items()
        }
        entries[eid] = {
            "task": "dx",
            "type": "binary",
            "metrics": ["auroc", "accuracy"],
            "min_size": 30,
            "columns": tables,
            "why": None,
            "positive": "disease",
        }
    return {"columns": list(cols), "min_size": 30, "entries": entries}


def _calibration(rng: np.random.Generator, win: str, best: str) -> dict[str, Any]:
    """The calibration results of two over-confident entries (logits x3), from the real maths."""
    from fusiondx.evaluation import calibration as cal
    from fusiondx.evaluation import conformal as conf
    from fusiondx.study.calibration import _diagram

    def one(eid: str) -> tuple[dict[str, Any], dict[str, Any]]:
        z = rng.normal(0, 1.5, 600)
        y = (rng.random(600) < 1 / (1 + np.exp(-z))).astype(int)
        params = cal.fit_scaling(3 * z[:300], y[:300], "binary")
        raw = cal.to_probs(3 * z[300:], "binary")
        p = cal.to_probs(cal.apply_scaling(3 * z[300:], params, "binary"), "binary")
        fitted = conf.fit_conformal(
            conf.class_probs(cal.to_probs(3 * z[:300], "binary"), "binary"), y[:300]
        )
        sets = conf.predict_sets(conf.class_probs(raw, "binary"), fitted)
        entry = {
            "id": eid,
            "method": "temperature",
            "temperature": params["temperature"],
            "before": cal.calibration_summary(raw, y[300:], "binary"),
            "after": cal.calibration_summary(p, y[300:], "binary"),
            "conformal": {"nominal": 0.9, **conf.set_report(sets, y[300:], ["healthy", "disease"])},
        }
        curves = {
            "entry": eid,
            "reliability": {
                "before": _diagram(raw, y[300:], "binary"),
                "after": _diagram(p, y[300:], "binary"),
            },
            "selective": conf.selective_curve((p > 0.5) == y[300:], np.maximum(p, 1 - p)),
        }
        return entry, curves

    (ew, cw), (eb, _) = one(win), one(best)
    return {
        "entries": [ew, eb],
        "winner": cw,
        "measures": "probability of the positive class",
        "bins": 10,
    }


def with_verdict(r: dict[str, Any]) -> dict[str, Any]:
    """The verdict the study writes, from the results' own comparison (no reference rows)."""
    by = {e["id"]: e for e in r["entries"]}
    comparisons = {"single": r["comparison"], "reference": None, "single_on_test": None}
    r["verdict"] = decide(by, "auroc", r["winner"], r["best_single"], None, comparisons, [], {})
    return r


def losing_results() -> dict[str, Any]:
    """Fusion loses: the best single modality beats the fusion chosen on validation."""
    r = sample_results(seed=1, fusion_wins=False)
    by = {e["id"]: e for e in r["entries"]}
    d = by["fusion_concat"]["test"]["auroc"]["mean"] - by["single_cxr"]["test"]["auroc"]["mean"]
    r["comparison"].update(
        a="fusion_concat",
        b="single_cxr",
        difference=d,
        low=d - 0.025,
        high=d + 0.015,
        p_value=0.21,
        delong=None,
    )
    return with_verdict(r)


def _imgs(text: str) -> int:
    return text.count(IMG)


def _lean(res: dict[str, Any]) -> dict[str, Any]:
    """Without the slow optional figures, for tests that look at the text only."""
    return {**res, "training_curves": None, "robustness": None, "curves": None}


@pytest.fixture(scope="module")
def full_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_report(full_results(), tmp_path_factory.mktemp("rep") / "report.html")


@pytest.fixture(scope="module")
def full(full_path: Path) -> tuple[dict[str, Any], str]:
    return full_results(), full_path.read_text(encoding="utf-8")


def test_full_report_is_self_contained(full: tuple[dict[str, Any], str]) -> None:
    res, page = full
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page)
    assert "<script" not in page.lower()
    assert "could not be drawn" not in page
    # ranked, ROC/PR, confusion, calibration, ablation, removed, missing-rate, modality drivers,
    # accuracy vs FLOPs, reliability before/after, selective prediction, fairness, training
    assert _imgs(page) == 13
    for uri in re.findall(r'src="(data:image/png;base64,[^"]+)"', page):
        assert len(uri) > 5000  # a real picture, not an empty canvas
    for e in res["entries"]:
        assert e["label"] in page
    sections = [m.group(1) for m in re.finditer(r'<section id="([a-z]+)"', page)]
    assert sections == [
        "summary",
        "ranking",
        "head",
        "samples",
        "ablation",
        "robustness",
        "cost",
        "explain",
        "calibration",
        "fairness",
        "training",
        "data",
        "config",
    ]


def test_cost_section_plots_accuracy_against_flops(full: tuple[dict[str, Any], str]) -> None:
    res, page = full
    sec = page.split('<section id="cost">')[1].split("</section>")[0]
    assert _imgs(sec) == 1 and "FLOPs per case" in sec
    winner = next(e for e in res["entries"] if e["id"] == res["winner"])
    from fusiondx.study.report._format import fmt_count

    assert f"costs {fmt_count(winner['flops_per_case'], 'FLOP')} per case" in sec


def test_cost_section_without_flops_is_a_note(tmp_path: Path) -> None:
    res = _lean(sample_results())
    for e in res["entries"]:
        e["flops_per_case"] = None
    page = write_report(res, tmp_path / "r.html").read_text()
    sec = page.split('<section id="cost">')[1].split("</section>")[0]
    assert "do not record FLOPs" in sec and _imgs(sec) == 0


def test_fairness_section_shows_subgroups_flags_and_undefined(
    full: tuple[dict[str, Any], str],
) -> None:
    res, page = full
    sec = page.split('<section id="fairness">')[1].split("</section>")[0]
    assert _imgs(sec) == 1 and "Fairness by subgroup" in sec
    for col in ("sex", "age_band", "site"):
        assert f"<h3>{col}</h3>" in sec
    assert "undefined: only one class (healthy)" in sec  # the all-healthy <40 band
    assert sec.count("under min_size") >= 2  # <40 and site_C, shown but flagged
    gap = res["fairness"]["entries"][res["winner"]]["columns"]["sex"]["gaps"]["auroc"]
    assert f"largest AUROC gap {gap['value']:.3f}" in sec
    assert "equalised-odds difference" in sec and "demographic-parity difference" in sec


def test_fairness_section_without_fairness_columns_is_a_note(tmp_path: Path) -> None:
    page = write_report(_lean(sample_results()), tmp_path / "r.html")
    sec = page.read_text().split('<section id="fairness">')[1].split("</section>")[0]
    assert "No fairness columns" in sec and _imgs(sec) == 0


def test_calibration_section_shows_before_and_after(full: tuple[dict[str, Any], str]) -> None:
    res, page = full
    sec = page.split('<section id="calibration">')[1].split("</section>")[0]
    for key in ("ECE before", "Adaptive ECE after", "Brier after", "Coverage", "Mean set size"):
        assert key in sec
    win = res["calibration"]["entries"][0]
    assert f"{win['after']['ece']:.3f}" in sec and f"{win['before']['ece']:.3f}" in sec
    assert win["after"]["ece"] < win["before"]["ece"]  # the scaling helped these logits
    assert "healthy: coverage / size" in sec and _imgs(sec) == 2


def test_trust_sections_render_in_chromium(full_path: Path) -> None:
    """The explanation, calibration and fairness sections are in the page a browser builds
    (the DOM after rendering, not only the HTML text), each with its picture."""
    if shutil.which("chromium") is None:
        if os.environ.get("FUSIONDX_REQUIRE_CHROMIUM"):
            pytest.fail("chromium is not installed but FUSIONDX_REQUIRE_CHROMIUM is set")
        pytest.skip("chromium not installed")
    dom = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom"]
        + [full_path.resolve().as_uri()],
        check=True,
        timeout=120,
        capture_output=True,
        text=True,
    ).stdout
    for sid, title in (
        ("explain", "Which modality drives the prediction"),
        ("calibration", "Calibration and triage"),
        ("fairness", "Fairness by subgroup"),
    ):
        sec = dom.split(f'<section id="{sid}">')[1].split("</section>")[0]
        assert title in sec and IMG in sec, sid
    assert "ECE before" in dom and "mean |Shapley|" in dom and "equalised-odds" in dom


def test_summary_names_the_winner_with_numbers(full: tuple[dict[str, Any], str]) -> None:
    res, page = full
    summary = page.split('<section id="summary">')[1].split("</section>")[0]
    assert "Fusion helps: concat reaches AUROC" in summary and "simpler model" not in summary
    assert 'class="verdict good"' in summary and "image cxr" in summary
    auroc = next(e for e in res["entries"] if e["id"] == "fusion_concat")["test"]["auroc"]
    assert f"{auroc['mean']:.3f} [{auroc['low']:.3f}, {auroc['high']:.3f}]" in summary
    assert "p ≤ 0.001" in summary and "3 seeds (0, 1, 2)" in summary and "300 test cases" in summary


def test_table_cells_and_footer(full: tuple[dict[str, Any], str]) -> None:
    res, page = full
    e = res["entries"][0]
    f1 = e["test"]["f1"]
    assert f"{f1['mean']:.3f} <span class=ci>[{f1['low']:.2f}, {f1['high']:.2f}]</span>" in page
    assert "MFLOP" in page and " M<" in page or " k<" in page
    assert "studies/demo/results.json" in page and "FusionDx 0.1" in page
    assert "&lt;concat &amp; friends&gt;" in page  # config escaped inside <pre>


def test_user_strings_are_escaped(tmp_path: Path) -> None:
    res = sample_results()
    res["entries"][3]["label"] = "<b>x</b>"
    res["study"]["name"] = "A & B <script>"
    page = write_report(_lean(res), tmp_path / "r.html").read_text()
    assert "&lt;b&gt;x&lt;/b&gt;" in page and "<b>x</b>" not in page
    assert "A &amp; B &lt;script&gt;" in page and "<script" not in page


def test_losing_variant_names_the_better_simpler_model(tmp_path: Path) -> None:
    page = write_report(losing_results(), tmp_path / "r.html").read_text()
    summary = page.split('<section id="summary">')[1].split("</section>")[0]
    assert "A simpler model is better: image cxr" in summary and "Fusion helps" not in summary
    assert 'class="verdict bad"' in summary


def test_unclear_gain_is_not_sold_as_a_win(tmp_path: Path) -> None:
    res = sample_results()
    res["comparison"].update(difference=0.01, low=-0.01, high=0.03, p_value=0.3)
    summary = (
        write_report(_lean(with_verdict(res)), tmp_path / "r.html")
        .read_text()
        .split("</section>")[0]
    )
    assert "A simpler model does as well: image cxr" in summary and "Fusion helps" not in summary
    assert 'class="verdict meh"' in summary


@pytest.mark.parametrize(
    ("drop", "n_img", "notes"),
    [
        (("ablation", "robustness"), 8, ["No ablation", "No robustness"]),
        (("curves",), 9, ["ROC and PR curves skipped", "Calibration curve skipped"]),
        (("training_curves", "confusion_matrix"), 9, ["No training curves", "matrix skipped"]),
        (("calibration",), 9, ["No calibration results"]),
        (
            (
                "curves",
                "confusion_matrix",
                "ablation",
                "robustness",
                "training_curves",
                "data",
                "comparison",
                "calibration",
            ),
            2,
            ["No ablation", "No split summary"],
        ),
    ],
)
def test_missing_parts_are_skipped(
    tmp_path: Path, drop: tuple[str, ...], n_img: int, notes: list[str]
) -> None:
    res = sample_results()
    for k in drop:
        res[k] = None
    page = write_report(res, tmp_path / "r.html").read_text()
    assert _imgs(page) == n_img
    for n in notes:
        assert n in page
    assert "could not be drawn" not in page


def test_multiclass_without_curves_and_nan_values(tmp_path: Path) -> None:
    res = sample_results()
    res["study"].update(task_type="multiclass", classes=["normal", "af", "mi"])
    res["curves"] = None
    res["calibration"] = None  # the sample's calibration is of a binary task
    res["confusion_matrix"] = {
        "entry": "fusion_concat",
        "labels": ["normal", "af", "mi"],
        "matrix": [[80, 5, 3], [6, 70, 9], [2, 8, 60]],
    }
    res["robustness"]["missing_rate"] = None
    res["entries"][-1]["test"]["auprc"] = {"mean": math.nan, "low": math.nan, "high": math.nan}
    res["entries"][-1]["flops_per_case"] = None
    page = write_report(res, tmp_path / "r.html").read_text()
    assert "the task is multiclass" in page and "n/a" in page
    assert "No missing-rate evaluation" in page
    assert _imgs(page) == 6  # ranked, confusion, ablation, removed, cost, training


def test_empty_results_do_not_crash(tmp_path: Path) -> None:
    page = write_report({"study": {}, "entries": []}, tmp_path / "r.html").read_text()
    assert "No entries" in page and _imgs(page) == 0


def test_malformed_section_becomes_a_note(tmp_path: Path) -> None:
    res = sample_results()
    res["robustness"]["removed"] = {"fusion_concat": "oops"}
    with pytest.warns(UserWarning, match="could not be drawn"):
        page = write_report(res, tmp_path / "r.html").read_text()
    assert "could not be drawn" in page and "Training curves" in page


def test_markdown_table_is_ranked(tmp_path: Path) -> None:
    res = sample_results()
    res["entries"] = res["entries"][::-1]  # the writer sorts, whatever the input order
    md, _ = write_tables(res, tmp_path)
    lines = md.read_text().splitlines()
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header[3:9] == ["Precision", "Accuracy", "F1", "Recall", "AUROC", "AUPRC"]
    assert header[-3:] == ["Parameters", "FLOPs per case", "Train time (s)"]
    rows = [ln for ln in lines[2:] if ln.startswith("| ")]
    assert len(rows) == len(res["entries"])
    aurocs = [float(r.strip("|").split("|")[7].split()[0]) for r in rows]
    assert aurocs == sorted(aurocs, reverse=True)
    expected = sorted(res["entries"], key=lambda e: -e["test"]["auroc"]["mean"])
    assert [r.strip("|").split("|")[1].strip().rstrip(" ★") for r in rows] == [
        e["label"] for e in expected
    ]
    assert "★" in rows[0]  # the winner ranks first here
    assert any("3 seeds" in ln and "bootstrap" in ln and "1000" in ln for ln in lines)


def test_csv_table_matches_the_dict(tmp_path: Path) -> None:
    res = sample_results()
    _, path = write_tables(res, tmp_path)
    df = pd.read_csv(path)
    for c in [
        "id",
        "label",
        "kind",
        "fusion",
        "level",
        "modalities",
        "n_parameters",
        "flops_per_case",
        "train_seconds",
        "val_auroc",
    ]:
        assert c in df.columns
    for m in METRICS:
        for k in ("mean", "low", "high"):
            assert f"{m}_{k}" in df.columns
    assert len(df) == len(res["entries"])
    assert df["n_parameters"].dtype.kind == "i" and df["auroc_mean"].dtype.kind == "f"
    assert list(df["id"]) == [e["id"] for e in res["entries"]]  # input was already ranked
    for e in res["entries"]:
        row = df.loc[df["id"] == e["id"]].iloc[0]
        assert row["label"] == e["label"] and row["kind"] == e["kind"]
        assert row["modalities"] == ";".join(e["modalities"])
        assert row["n_parameters"] == e["n_parameters"]
        assert row["flops_per_case"] == pytest.approx(e["flops_per_case"])
        assert row["val_auroc"] == pytest.approx(e["val"]["auroc"])
        for m in METRICS:
            for k in ("mean", "low", "high"):
                assert row[f"{m}_{k}"] == pytest.approx(e["test"][m][k])


def test_csv_nan_is_empty(tmp_path: Path) -> None:
    res = copy.deepcopy(sample_results())
    res["entries"][0]["test"]["f1"]["mean"] = math.nan
    _, path = write_tables(res, tmp_path)
    assert math.isnan(pd.read_csv(path)["f1_mean"].iloc[0])


@pytest.mark.optional
def test_report_renders_in_chromium(tmp_path: Path, full_path: Path) -> None:
    from PIL import Image

    if shutil.which("chromium") is None:
        # CI (.ci/run) installs Chromium and sets this, so the test cannot silently skip there.
        if os.environ.get("FUSIONDX_REQUIRE_CHROMIUM"):
            pytest.fail(
                "chromium is not installed but FUSIONDX_REQUIRE_CHROMIUM is set (apt-get install chromium)"
            )
        pytest.skip("chromium not installed")

    page = full_path
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--screenshot={shot}",
            "--window-size=1280,2400",
            "--hide-scrollbars",
            page.resolve().as_uri(),
        ],
        check=True,
        timeout=120,
        capture_output=True,
    )
    img = Image.open(shot).convert("RGB")
    assert img.size == (1280, 2400)
    colors = img.getcolors(maxcolors=1 << 20)
    assert colors is not None and len(colors) > 50


def test_report_counts_seeds(tmp_path: Path) -> None:
    res = sample_results()
    res["study"]["n_test"] = 123
    page = write_report(res, tmp_path / "r.html").read_text()
    assert re.search(r"3 seeds \(0, 1, 2\).*123 test cases", page)
    write_tables(res, tmp_path)
    assert (
        "Mean over 3 seeds (0, 1, 2) on the test split (123 cases)"
        in (tmp_path / "table.md").read_text()
    )

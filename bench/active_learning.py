"""Active learning, measured: does `fusiondx suggest` pick cases worth labelling?

On the built-in cohort, a fixed test set (25% of the patients) and validation set (15%) are set
aside; the rest is the pool an expert could label. Every strategy starts from the same random
10% of the pool and gets 10% more per round for 3 rounds, chosen

- ``random``: uniformly at random (the baseline every active-learning claim must beat);
- ``entropy``: the most uncertain by `fusiondx suggest` (entropy of the trained model);
- ``entropy+diversity``: `fusiondx suggest --diversity` (k-center greedy on the fused features
  among the 4n most uncertain).

After each round the model is trained again from scratch on the labelled cases (the demo model,
early stopping on validation AUROC) and scored on the test set. Repeated over ``--seeds`` draws
of the starting labels (the test and validation sets stay fixed); the mean and the per-seed
AUROCs are reported, with the mean difference to random per round, so the reader can judge
whether it is more than seed noise.

Writes docs/results/active_learning.json (with the command that produced it) and prints a table.
Example: python -m bench.active_learning   (20 trainings with the defaults; measured at 70-90 s
each on 2 cores shared with other jobs (load 10), i.e. 25-30 minutes there; about 10 minutes on
2 idle cores is an estimate, not a measurement)
"""

from __future__ import annotations

import argparse
import copy
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench._common import ROOT, WORK, machine, machine_line

RESULTS = ROOT / "docs" / "results" / "active_learning.json"
STRATEGIES = ("random", "entropy", "entropy+diversity")


def _config(manifest: Path, root: Path, out: Path, seed: int, epochs: int) -> Any:
    """The demo model over ``manifest`` (split from its ``split`` column), quiet and fixed."""
    from fusiondx.config import Config
    from fusiondx.demo import DEMO_CONFIG

    raw = copy.deepcopy(DEMO_CONFIG)
    raw["name"] = "al"
    raw["seed"] = seed
    raw["output_dir"] = str(out)
    raw["data"] |= {"manifest": str(manifest), "root": str(root), "split": {"column": "split"}}
    # The same settings every round: the small-data policy would change them with the label count.
    raw["train"] |= {"epochs": epochs, "progress": False, "small_data": "off"}
    return Config.model_validate(raw)


def _split_patients(df: pd.DataFrame, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Case positions of test (25% of patients), val (15%) and the labelling pool (the rest)."""
    patients = rng.permutation(df["patient_id"].unique())
    n_test, n_val = round(0.25 * len(patients)), round(0.15 * len(patients))
    where = df["patient_id"].to_numpy()
    test = np.flatnonzero(np.isin(where, patients[:n_test]))
    val = np.flatnonzero(np.isin(where, patients[n_test : n_test + n_val]))
    pool = np.flatnonzero(np.isin(where, patients[n_test + n_val :]))
    return test, val, pool


def _train(
    df: pd.DataFrame,
    labelled: np.ndarray,
    val: np.ndarray,
    test: np.ndarray,
    folder: Path,
    root: Path,
    seed: int,
    epochs: int,
) -> tuple[Path, float]:
    """Fit on the labelled cases; return the run folder and its test AUROC."""
    from fusiondx.engine.run import fit

    folder.mkdir(parents=True, exist_ok=True)
    rows = np.concatenate([labelled, val, test])
    part = df.iloc[rows].copy()
    part["split"] = ["train"] * len(labelled) + ["val"] * len(val) + ["test"] * len(test)
    manifest = folder / "manifest.csv"
    part.to_csv(manifest, index=False)
    result = fit(_config(manifest, root, folder / "runs", seed, epochs), overwrite=True)
    return result.run_dir, float(result.metrics["test"]["diagnosis"]["auroc"])


def _choose(
    strategy: str,
    df: pd.DataFrame,
    unlabelled: np.ndarray,
    k: int,
    run_dir: Path,
    folder: Path,
    root: Path,
    rng: np.random.Generator,
) -> np.ndarray:
    """The ``k`` pool positions to label next under ``strategy``."""
    if strategy == "random":
        return rng.choice(unlabelled, size=k, replace=False)
    from fusiondx.engine.suggest import suggest

    pool = folder / "pool.csv"
    df.iloc[unlabelled].drop(columns=["label"]).to_csv(pool, index=False)
    picked = suggest(
        run_dir,
        pool,
        n=k,
        strategy=strategy.split("+")[0],
        diversity=strategy.endswith("+diversity"),
        root=root,
    )
    ids = picked.table.loc[picked.table["rank"].notna(), "case_id"].astype(str)
    position = {c: i for i, c in enumerate(df["case_id"].astype(str))}
    chosen = np.array([position[c] for c in ids], dtype=int)
    if len(chosen) < k:  # cases with no modality are never suggested: top up at random
        rest = np.setdiff1d(unlabelled, chosen)
        chosen = np.concatenate([chosen, rng.choice(rest, size=k - len(chosen), replace=False)])
    return chosen


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from fusiondx.datasets.synthetic import make_cohort

    torch.set_num_threads(args.threads)
    work = WORK / "active_learning"
    cohort = work / f"cohort{args.cases}"
    if not (cohort / ".complete").is_file():
        print(f"Making a {args.cases}-case built-in cohort in {cohort} ...", flush=True)
        make_cohort(cohort, n_cases=args.cases, seed=0, image_size=32)
        (cohort / ".complete").write_text("ok\n")
    df = pd.read_csv(cohort / "manifest.csv", dtype=str, keep_default_na=False)
    strategies = args.strategies.split(",")
    aurocs: dict[str, list[list[float]]] = {s: [] for s in strategies}
    t0 = time.perf_counter()
    for seed in range(args.seeds):
        rng = np.random.default_rng(seed)
        test, val, pool = _split_patients(df, rng)
        step = max(1, round(0.1 * len(pool)))
        start = rng.choice(pool, size=step, replace=False)
        base = work / f"seed{seed}"
        run0, auc0 = _train(df, start, val, test, base / "round0", cohort, seed, args.epochs)
        print(f"seed {seed}: round 0, {len(start)} labels: test AUROC {auc0:.3f}", flush=True)
        for s in strategies:
            labelled, run_dir, curve = start.copy(), run0, [auc0]
            pick_rng = np.random.default_rng([seed, 1])
            for r in range(1, args.rounds + 1):
                folder = base / s.replace("+", "_") / f"round{r}"
                folder.mkdir(parents=True, exist_ok=True)
                unlabelled = np.setdiff1d(pool, labelled)
                k = min(step, len(unlabelled))
                chosen = _choose(s, df, unlabelled, k, run_dir, folder, cohort, pick_rng)
                labelled = np.concatenate([labelled, chosen])
                run_dir, auc = _train(df, labelled, val, test, folder, cohort, seed, args.epochs)
                curve.append(auc)
                print(
                    f"seed {seed}: {s}, round {r}, {len(labelled)} labels: test AUROC {auc:.3f} "
                    f"({time.perf_counter() - t0:.0f} s so far)",
                    flush=True,
                )
            aurocs[s].append(curve)
    return _summary(args, aurocs, len(pool), step, len(test), len(val), time.perf_counter() - t0)


def _summary(
    args: argparse.Namespace,
    aurocs: dict[str, list[list[float]]],
    pool: int,
    step: int,
    n_test: int,
    n_val: int,
    seconds: float,
) -> dict[str, Any]:
    mean = {s: np.mean(c, axis=0).round(4).tolist() for s, c in aurocs.items()}
    diff = {}
    if "random" in aurocs:
        rand = np.asarray(aurocs["random"])
        for s, c in aurocs.items():
            if s != "random":
                d = np.asarray(c) - rand  # paired: same seed, same start, same test set
                diff[s] = {
                    "mean": d.mean(axis=0).round(4).tolist(),
                    "wins": (d[:, 1:] > 0).sum(axis=0).tolist(),  # seeds above random, per round
                }
    verdict = _verdict(mean, diff, args.rounds, args.seeds)
    return {
        "command": "python -m bench.active_learning "
        + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "cohort": {"cases": args.cases, "pool": pool, "test": n_test, "val": n_val},
        "labels_per_round": [step * (r + 1) for r in range(args.rounds + 1)],
        "settings": {
            "seeds": args.seeds,
            "rounds": args.rounds,
            "epochs": args.epochs,
            "model": "the demo model (concat fusion of cxr, ecg, report, labs), from scratch each round",
            "diversity_candidates": "4n most uncertain",
        },
        "test_auroc": {
            s: {"mean": mean[s], "per_seed": np.round(c, 4).tolist()} for s, c in aurocs.items()
        },
        "difference_to_random": diff,
        "verdict": verdict,
        "seconds": round(seconds, 1),
        "machine": machine_line(machine()),
    }


def _verdict(
    mean: dict[str, list[float]], diff: dict[str, dict[str, Any]], rounds: int, seeds: int
) -> str:
    """The result in one honest paragraph: final AUROCs, and whether anything beat random."""
    final = {s: m[-1] for s, m in mean.items()}
    text = (
        f"After {rounds} rounds, mean test AUROC: "
        + ", ".join(f"{s} {v:.3f}" for s, v in final.items())
        + "."
    )
    if not diff:
        return text
    # Rounds 1.. only: round 0 is the same model for every strategy.
    gain = {s: float(np.mean(d["mean"][1:])) for s, d in diff.items()}
    text += " Mean AUROC difference to random over the rounds: " + ", ".join(
        f"{s} {v:+.3f}" for s, v in gain.items()
    )
    beats = [s for s, v in gain.items() if v > 0.005]
    if beats:
        return text + (
            f"; {' and '.join(beats)} beat random by more than 0.005 on {seeds} seed(s), a "
            "tendency rather than a proof at this size."
        )
    return text + (
        f"; no uncertainty strategy beat random by more than 0.005 on {seeds} seed(s): here "
        "the model's uncertainty did not pick better cases than chance."
    )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m bench.active_learning",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--cases", type=int, default=600, help="built-in cohort size (default 600)")
    p.add_argument("--seeds", type=int, default=2, help="draws of the starting labels")
    p.add_argument("--rounds", type=int, default=3, help="rounds of +10%% labels")
    p.add_argument("--epochs", type=int, default=10, help="most epochs per training")
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--strategies", default=",".join(STRATEGIES), help="comma-separated")
    p.add_argument("--out", type=Path, default=RESULTS, help="the results JSON to write")
    args = p.parse_args(argv)
    summary = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2) + "\n")
    labels = summary["labels_per_round"]
    print("\nTest AUROC (mean over seeds) by labelled cases:")
    print("strategy".ljust(20) + "".join(f"{n:>8}" for n in labels))
    for s, v in summary["test_auroc"].items():
        print(s.ljust(20) + "".join(f"{x:8.3f}" for x in v["mean"]))
    print(f"\n{summary['verdict']}\nWrote {args.out} ({summary['seconds']:.0f} s)")


if __name__ == "__main__":
    main()

"""Federated vs centralised vs each site alone (issue 19): `fusiondx federate` measured.

- The built-in cohort with a planted site shift (``site_shift=2``: site_A as generated, site_B
  at strength 1, site_C at 2; scanner contrast, ECG gain, report wording), split into its 3
  sites; the demo's four-modality model. Each site splits its own cases (the config's 70/15/15,
  grouped by patient), and all three approaches are tested on those same test cases.
- NIH ChestX-ray14 (../shared/data/nih1000_cxr, skipped cleanly when absent), normal vs abnormal
  from the image and the metadata, split into 3 sites by a documented rule: site =
  ``hospital_<k>`` with k = the last digit of the patient id modulo 3 (so a patient is at one
  site only; the sites differ by chance, not by acquisition).

Federated training is FedAvg (or --strategy fedprox) in Flower's server loop with the sites
simulated in one process (``--mode simulation``); the centralised model and each site's own
train for ``rounds x local epochs`` epochs, like the federated one. Table: test AUROC with 95%
bootstrap CIs per site and pooled, the rounds and the bytes of parameters sent both ways.

Example: python -m bench federated --cases 900 --rounds 10 --local-epochs 1   (about 20 minutes
on 2 cores); a smoke run: python -m bench federated --cases 150 --rounds 1 --no-real
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bench._common import ROOT, WORK, default_config, save

SHARED = ROOT.parent / "shared" / "data"
SITE_SHIFT = 2.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cases", type=int, default=900, help="built-in cohort size")
    p.add_argument("--rounds", type=int, default=10, help="federated rounds")
    p.add_argument("--local-epochs", type=int, default=1, help="epochs per site per round")
    p.add_argument("--strategy", default="fedavg", help="fedavg or fedprox")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap replicates of the CIs")
    p.add_argument("--no-real", action="store_true", help="skip ChestX-ray14 even if present")


def _cohort(n: int) -> Path:
    from fusiondx.datasets.synthetic import make_cohort

    out = WORK / "cohorts" / f"federated_n{n}_shift{SITE_SHIFT:g}"
    if not (out / ".complete").is_file():
        make_cohort(out, n_cases=n, seed=0, image_size=32, site_shift=SITE_SHIFT)
        (out / ".complete").write_text("done\n")
    return out / "manifest.csv"


def _nih(work: Path, epochs: int) -> Any:
    """The ChestX-ray14 subset with a ``site`` column by the rule above, or None if absent."""
    import pandas as pd
    import yaml

    from fusiondx.config import load_config
    from fusiondx.datasets.prepare import prepare_dataset

    if not (SHARED / "nih1000_cxr").is_dir():
        print("ChestX-ray14 subset not found in ../shared/data: skipped", flush=True)
        return None
    out = work / "nih_cxr"
    if not (out / "nih_cxr.yaml").is_file():
        prepare_dataset("nih_cxr", SHARED / "nih1000_cxr", out, progress=False)
    df = pd.read_csv(out / "manifest.csv")
    digit = df["patient_id"].astype(str).str.extract(r"(\d)\D*$")[0].fillna("0").astype(int)
    df["site"] = "hospital_" + (digit % 3).astype(str)
    df.to_csv(out / "manifest_sites.csv", index=False)
    raw = yaml.safe_load((out / "nih_cxr.yaml").read_text())
    raw |= {"name": "nih_federated", "output_dir": str(work / "runs")}
    raw["data"]["manifest"] = str(out / "manifest_sites.csv")
    raw["train"] = raw.get("train", {}) | {
        "epochs": epochs,
        "early_stopping": None,
        "progress": False,
    }
    return load_config(raw)


def run(args: argparse.Namespace) -> None:
    import json

    from fusiondx.federated import federate

    work = WORK / "federated"
    epochs = args.rounds * args.local_epochs
    cfg = default_config(_cohort(args.cases), work / "runs", epochs=epochs, progress=False)
    cfg = cfg.model_copy(
        update={"train": cfg.train.model_copy(update={"early_stopping": None}), "name": "cohort"}
    )
    results: dict[str, Any] = {}
    sections = []
    todo = [("built-in cohort (site shift 2)", "cohort", cfg)]
    nih = None if args.no_real else _nih(work, epochs)
    if nih is not None:
        todo.append(("ChestX-ray14 subset (site = patient id mod 3)", "nih_cxr", nih))
    for title, key, c in todo:
        print(f"== {title}", flush=True)
        federate(
            c,
            "site",
            rounds=args.rounds,
            strategy=args.strategy,
            local_epochs=args.local_epochs,
            out_dir=work / key,
            n_boot=args.n_boot,
        )
        results[key] = json.loads((work / key / "results.json").read_text())
        sections.append(f"**{title}**\n\n" + (work / key / "results.md").read_text())
    note = (
        f"Federated: Flower {args.strategy} over the sites ({args.rounds} rounds x "
        f"{args.local_epochs} local epoch(s)); centralised and each site alone: `fit` for "
        f"{epochs} epochs on the pooled / the site's own training cases. Same test cases for "
        "all three; preprocessing agreed by federated statistics (docs/federated.md). 'sites "
        "alone' scores each site's test cases with that site's own model."
    )
    save(
        "federated",
        results,
        note + "\n\n" + "\n\n".join(sections),
        "Federated training across sites",
    )

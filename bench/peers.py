"""Peers side by side: fusilli 2.0 and pytorch-widedeep 1.7 vs FusionDx on the same files and split.

`../shared/peers/peer_data.py` writes one dataset (tabular features + 32x32 grayscale PNGs, a
binary label, a `split` column); the peers' own run scripts train on it in their own virtual
environments (installed by their install scripts into the bench work folder on first use), and
FusionDx trains on a manifest of the very same rows, PNG files and split. Every library selects
its model on the validation split and is scored there, as the peer scripts do (FusionDx's test
split is a copy of the validation cases, so its checkpoint choice sees nothing the peers do not).

Models: tabular-only, image-only, intermediate concatenation and decision-level fusion; a 3-stage
CNN (16/32/64 channels) for images and a small MLP for the 8 features in every library. Training
throughput = training cases x epochs run / training seconds (each library's own timing of its
fit, validation included). Each library trains ``--repeats`` times; the table shows medians.

Example: python -m bench peers --repeats 3   (about 10 minutes on 2 cores; --img-size 128 for
the second benchmark, written to its own section)
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

from bench._common import ROOT, WORK, md_table, save

TITLE = "1. Peers side by side: fusilli and pytorch-widedeep on the same files and split"
PEERS = ROOT.parent / "shared" / "peers"
PAIRS = {  # FusionDx entry -> (fusilli model, widedeep config) that do the same thing
    "tabular only": ("Tabular1Unimodal", "tab_only"),
    "image only": ("ImgUnimodal", "img_only"),
    "concat": ("ConcatImageMapsTabularMaps", "concat_head"),
    "late": ("ImageDecision", "late_sum"),
}


def _venv(name: str, script: str) -> Path:
    py = WORK / "peers" / f"{name}-venv" / "bin" / "python"
    if not py.is_file():
        print(
            f"Installing {name} into {py.parents[1]} with {script} (minutes, once) ...", flush=True
        )
        subprocess.run(["bash", str(PEERS / script), str(py.parents[1])], check=True)
    return py


def make_data(n: int, seed: int, img_size: int = 32) -> Path:
    out = WORK / "peers" / (f"data_n{n}_s{seed}" + ("" if img_size == 32 else f"_img{img_size}"))
    if not (out / "data.csv").is_file():
        sys.path.insert(0, str(PEERS))
        import peer_data

        args = type(
            "A",
            (),
            {
                "csv": None,
                "n": n,
                "n_feat": 8,
                "img_size": img_size,
                "signal": 1.5,
                "seed": seed,
                "val_frac": 0.2,
                "out_dir": str(out),
            },
        )()
        peer_data.load_data(args)
    return out


def fusiondx_manifest(data: Path) -> Path:
    """The peers' data.csv as a FusionDx manifest: same rows and files; val cases also as test."""
    df = pd.read_csv(data / "data.csv")
    df["image"] = "images/" + df["image"]
    test = df[df["split"] == "val"].assign(split="test", id=lambda d: d["id"] + "_copy")
    path = data / "fusiondx_manifest.csv"
    pd.concat([df, test]).to_csv(path, index=False)
    return path


def run_fusiondx(manifest: Path, args: Any) -> list[dict[str, Any]]:
    from fusiondx.config import Config
    from fusiondx.engine.run import fit

    features = [f"f{j}" for j in range(8)]
    image = {
        "name": "image",
        "kind": "image",
        "column": "image",
        "preprocessing": {"size": [args.img_size, args.img_size]},
        "encoder": {"name": "cnn", "options": {"widths": [16, 32, 64], "out_dim": 64}},
    }
    tab = {
        "name": "tabular",
        "kind": "tabular",
        "columns": features,
        # pytorch-widedeep's TabMlp as its runner builds it: one hidden layer of 64, then 32.
        "encoder": {"name": "mlp", "options": {"hidden_dim": 64, "num_layers": 1, "out_dim": 32}},
    }
    entries = {
        # One modality: concat with one layer (a projection), as each peer puts one linear
        # output layer on its single encoder; two: the default two-layer concat MLP.
        "tabular only": ([tab], {"name": "concat", "dim": 32, "options": {"layers": 1}}),
        "image only": ([image], {"name": "concat", "dim": 64, "options": {"layers": 1}}),
        "concat": ([image, tab], {"name": "concat", "dim": 64}),
        "late": ([image, tab], {"name": "late_average", "dim": 64}),
    }
    rows = []
    for name, (mods, fusion) in entries.items():
        if name not in args.pairs:
            continue
        raw = {
            "name": f"peers_{name.replace(' ', '_')}",
            "seed": args.seed,
            "output_dir": str(WORK / "peers" / "runs"),
            "data": {"manifest": str(manifest), "id_column": "id", "split": {"column": "split"}},
            "modalities": mods,
            "fusion": fusion,
            "tasks": [{"name": "y", "label": "label"}],
            "train": {
                "epochs": args.epochs,
                "batch_size": args.batch_size,
                "lr": args.lr,
                "early_stopping": {"monitor": "loss", "patience": 10},
                "progress": False,
            },
        }
        t = time.perf_counter()
        m = fit(Config.model_validate(raw), overwrite=True, progress=False).metrics
        wall = time.perf_counter() - t
        rows.append(
            {
                "library": "FusionDx",
                "model": name,
                "entry": name,
                "auroc": m["val"]["y"]["auroc"],
                "epochs": m["epochs_run"],
                "train_s": m["train_seconds"],
                "wall_s": wall,
                "train_cases": m["cases"]["train"],
            }
        )
        print(
            f"  FusionDx {name}: AUROC {rows[-1]['auroc']:.3f}, {rows[-1]['epochs']} epochs, "
            f"{rows[-1]['train_s']:.1f} s",
            flush=True,
        )
    return rows


def run_peer(name: str, data: Path, args: Any) -> list[dict[str, Any]]:
    if name == "fusilli":
        py, script, models = (
            _venv("fusilli", "install_fusilli.sh"),
            "run_fusilli.py",
            [PAIRS[e][0] for e in args.pairs],
        )
        extra = ["--models", *models, "--work-dir", str(WORK / "peers" / "work" / "fusilli")]
        results = WORK / "peers" / "work" / "fusilli" / "results.csv"
    else:
        py, script, models = (
            _venv("widedeep", "install_widedeep.sh"),
            "run_widedeep.py",
            [PAIRS[e][1] for e in args.pairs],
        )
        extra = ["--configs", *models, "--img-resize", str(args.img_size)]
        results = WORK / "peers" / "peers-work" / "work" / "widedeep" / "results.csv"
    cmd = [
        str(py),
        str(PEERS / script),
        "--csv",
        str(data / "data.csv"),
        "--image-dir",
        str(data / "images"),
        "--split-col",
        "split",
        "--epochs",
        str(args.epochs),
        "--batch-size",
        str(args.batch_size),
        "--lr",
        str(args.lr),
        "--seed",
        str(args.seed),
        *extra,
    ]
    print(f"  running {name} ...", flush=True)
    t = time.perf_counter()
    out = subprocess.run(cmd, cwd=WORK / "peers", capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}")
    print(f"  {name} done in {time.perf_counter() - t:.0f} s", flush=True)
    df = pd.read_csv(results)
    n_train = int((pd.read_csv(data / "data.csv")["split"] == "train").sum())
    rows = []
    for entry in args.pairs:
        pair = PAIRS[entry]
        model = pair[0] if name == "fusilli" else pair[1]
        r = df[df["model" if name == "fusilli" else "config"] == model].iloc[0]
        epochs = (
            int(r["epochs"]) + 1 if name == "fusilli" else int(r["epochs_run"])
        )  # fusilli: last index
        rows.append(
            {
                "library": name,
                "model": model,
                "entry": entry,
                "auroc": float(r["val_auroc"]),
                "epochs": epochs,
                "train_s": float(r["train_s"] if name == "fusilli" else r["fit_s"]),
                "train_cases": n_train,
            }
        )
    return rows


def _one_repeat(data: Path, manifest: Path, args: Any) -> list[dict[str, Any]]:
    """Every library once, one after the other; throughput ratios within this repeat only."""
    rows = run_fusiondx(manifest, args)
    for lib in args.peers:
        rows += run_peer(lib, data, args)
    for r in rows:
        r["throughput"] = r["train_cases"] * r["epochs"] / r["train_s"]
    ours = {r["entry"]: r for r in rows if r["library"] == "FusionDx"}
    for r in rows:
        r["speedup"] = ours[r["entry"]]["throughput"] / r["throughput"]
    return rows


def _median_rows(repeats: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per library and entry: the first repeat's row with the median time, throughput and
    ratio of all repeats (a ratio's median over repeats, each ratio from one repeat)."""
    out = []
    for i, first in enumerate(repeats[0]):
        same = [rep[i] for rep in repeats]
        out.append(
            {
                **first,
                "train_s": statistics.median(r["train_s"] for r in same),
                "throughput": statistics.median(r["throughput"] for r in same),
                "speedup": statistics.median(r["speedup"] for r in same),
                "speedups": [r["speedup"] for r in same],
            }
        )
    return out


def run(args: Any) -> None:
    from fusiondx.engine.trainer import ONE_THREAD_BELOW_FLOPS

    unknown = [e for e in args.pairs if e not in PAIRS]
    if unknown:
        raise SystemExit(f"unknown pair(s) {unknown}; choose from {list(PAIRS)}")
    import torch

    # Before any fit: FusionDx sets one thread for a tiny model in this very process.
    threads = torch.get_num_threads()
    data = make_data(args.n, args.seed, args.img_size)
    manifest = fusiondx_manifest(data)
    repeats = []
    for k in range(args.repeats):
        print(f"repeat {k + 1} of {args.repeats}", flush=True)
        repeats.append(_one_repeat(data, manifest, args))
    rows = _median_rows(repeats)
    ours = {r["entry"]: r for r in rows if r["library"] == "FusionDx"}
    fmt = [
        {
            "entry": r["entry"],
            "lib": r["library"],
            "model": f"`{r['model']}`",
            "auc": f"{r['auroc']:.3f}",
            "ep": r["epochs"],
            "s": f"{r['train_s']:.1f}",
            "thr": f"{r['throughput']:.0f}",
            "x": "1.00"
            if r["library"] == "FusionDx"
            else f"{r['speedup']:.2f}x ({', '.join(f'{x:.2f}' for x in r['speedups'])})",
        }
        for r in sorted(
            rows, key=lambda r: (list(PAIRS).index(r["entry"]), r["library"] != "FusionDx")
        )
    ]
    table = md_table(
        fmt,
        [
            ("entry", "what"),
            ("lib", "library"),
            ("model", "model"),
            ("auc", "val AUROC"),
            ("ep", "epochs"),
            ("s", "train s (median)"),
            ("thr", "train cases/s (median)"),
            ("x", "FusionDx throughput / this: median (each repeat)"),
        ],
    )
    summary = []
    for lib, target in (("fusilli", 2.0), ("widedeep", 1.0)):
        sp = [r for r in rows if r["library"] == lib]
        if not sp:
            continue
        worst = min(r["speedup"] for r in sp)
        auc_gap = min(ours[r["entry"]]["auroc"] - r["auroc"] for r in sp)
        summary.append(
            f"vs {lib}: FusionDx throughput {worst:.2f}x to {max(r['speedup'] for r in sp):.2f}x "
            f"(medians; target ≥ {target:g}x: {'met' if worst >= target else 'not met'}); AUROC "
            f"difference FusionDx minus {lib} at least {auc_gap:+.3f}"
        )
    one_thread = (
        f" (FusionDx trains a model under {ONE_THREAD_BELOW_FLOPS / 1e6:g} MFLOPs per batch on "
        "one: the tabular-only one)"
        if "tabular only" in args.pairs
        else ""
    )
    md = (
        f"{args.n} cases ({rows[0]['train_cases']} train, the rest validation) from "
        f"`../shared/peers/peer_data.py` (seed {args.seed}, {args.img_size}x{args.img_size} "
        f"images), up to {args.epochs} epochs, batch size "
        f"{args.batch_size}, lr {args.lr}, early stopping on validation loss in every library, "
        f"{threads} threads each{one_thread}. Each library "
        f"trained {args.repeats} times, one after the other; times are medians, and each ratio "
        f"is taken within one repeat. Architectures as the peers' runners build them: a "
        f"3-stage CNN (16/32/64) for images, an MLP of one hidden layer of 64 and an embedding "
        f"of 32 for the features, one output layer on a single modality.\n\n{table}\n\n"
        + "\n".join(f"- {s}" for s in summary)
    )
    name = "peers" if args.img_size == 32 else f"peers_img{args.img_size}"
    title = TITLE if args.img_size == 32 else f"{TITLE} ({args.img_size}x{args.img_size} images)"
    save(
        name,
        {"n": args.n, "img_size": args.img_size, "rows": rows, "repeats": repeats},
        md,
        title,
    )


def add_arguments(p: Any) -> None:
    p.add_argument("--n", type=int, default=2000, help="cases in the shared synthetic dataset")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--repeats", type=int, default=3, help="times each library trains; medians are shown"
    )
    p.add_argument(
        "--img-size",
        type=int,
        default=32,
        help="side of the images; other than 32 writes its own section (peers_img<size>)",
    )
    p.add_argument(
        "--pairs",
        type=lambda s: [x.strip() for x in s.split(",")],
        default=list(PAIRS),
        help=f"comma-separated pairs to run, of: {', '.join(PAIRS)}",
    )
    p.add_argument(
        "--peers",
        type=lambda s: [x.strip() for x in s.split(",") if x.strip()],
        default=["fusilli", "widedeep"],
        help="comma-separated peers to run ('' for FusionDx alone)",
    )

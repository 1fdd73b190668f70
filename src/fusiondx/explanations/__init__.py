"""Explanations of a trained run's predictions: which modality drives a prediction (exact
Shapley values over the modalities, :mod:`fusiondx.explanations.shapley`) and what in each modality
(Grad-CAM on images, Integrated Gradients on signals, tokens and tabular values, with captum).

``explain_case(run_dir, case_id)`` writes ``runs/<name>/explanations/<case>/explanation.html``;
:mod:`fusiondx.explanations.importance` gives a whole test set's mean |Shapley| and permutation
importance per modality (the study report's "Which modality drives the prediction").
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fusiondx.explanations._calibrated import calibrated
from fusiondx.explanations.case import (
    CaseExplanation,
    case_folder,
    explain_rows,
    find_case,
    prepare_rows,
    read_cases,
)


def explain_case(
    run_dir: Path,
    case_id: str,
    *,
    data: Path | None = None,
    root: Path | None = None,
    out: Path | None = None,
    task: str | None = None,
    target: str | None = None,
) -> CaseExplanation:
    """Explain one case of a trained run; writes explanation.html, explanation.json and PNGs.

    Args:
        run_dir: a run folder written by ``fusiondx fit``.
        case_id: the case to explain.
        data: the manifest holding the case (default: the run's own manifest).
        root: data root of ``data`` (default: its folder; the run's data root for its manifest).
        out: folder to write (default ``<run_dir>/explanations/<case>/``).
        task: the classification task (default: the run's first).
        target: the class explained (default: a binary task's positive class, else the
            predicted class).
    """
    from fusiondx.engine.rundir import RunDir

    run = RunDir(Path(run_dir))
    cfg, model, state = run.load()
    model = calibrated(model, run.posthoc())
    manifest = Path(data) if data is not None else cfg.data.manifest
    data_root = root or (manifest.parent if data is not None else cfg.data.data_root)
    df = read_cases(cfg, manifest)
    pos = find_case(df, cfg, str(case_id), manifest)
    rows = df.iloc[[pos]].reset_index(drop=True)
    prepared = prepare_rows(cfg, state, rows, manifest, data_root)
    folder = Path(out) if out is not None else run.path / "explanations" / case_folder(str(case_id))
    return explain_rows(
        model, cfg, prepared, rows, [0], [folder], run=run.path.name, task=task, target=target
    )[0]


def explain_manifest(
    run_dir: Path,
    data: Path,
    out_dir: Path,
    *,
    root: Path | None = None,
    cases: Sequence[str] | None = None,
    task: str | None = None,
    target: str | None = None,
) -> list[CaseExplanation]:
    """Explain every case of a manifest (or the listed ``cases``): one folder per case in ``out_dir``."""
    from fusiondx.engine.rundir import RunDir

    run = RunDir(Path(run_dir))
    cfg, model, state = run.load()
    model = calibrated(model, run.posthoc())
    df = read_cases(cfg, Path(data))
    if cases is not None:
        keep = [find_case(df, cfg, str(c), Path(data)) for c in cases]
        df = df.iloc[keep]
    df = df.reset_index(drop=True)
    prepared = prepare_rows(cfg, state, df, Path(data), root or Path(data).parent)
    ids = df[cfg.data.id_column].astype(str).tolist()
    folders = [Path(out_dir) / case_folder(i) for i in ids]
    return explain_rows(
        model,
        cfg,
        prepared,
        df,
        list(range(len(df))),
        folders,
        run=run.path.name,
        task=task,
        target=target,
    )


__all__ = ["CaseExplanation", "explain_case", "explain_manifest"]

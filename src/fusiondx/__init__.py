"""FusionDx: multimodal disease recognition from images, signals, clinical text and tabular data.

The Python API mirrors the command line::

    import fusiondx
    cfg = fusiondx.load_config("study.yaml")
    result = fusiondx.fit(cfg)                       # -> runs/<name>/
    fusiondx.evaluate(result.run_dir)                # test split metrics
    fusiondx.predict(result.run_dir, data=Path("new.csv"), out=Path("preds.csv"))
    fusiondx.suggest(result.run_dir, pool="unlabelled.csv", n=50)  # what to label next
    fusiondx.explain(result.run_dir, "case_00042")   # -> runs/<name>/explanations/case_00042/
    fusiondx.export_model(result.run_dir, int8=True) # -> model.onnx, model.int8.onnx, int8.json
    fusiondx.distill(result.run_dir, "student.yaml")   # teacher vs distilled vs student alone
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fusiondx.config import Config, load_config
from fusiondx.errors import ConfigError, DataError, FusionDxError, RunError
from fusiondx.registry import (
    create_encoder,
    create_fusion,
    create_head,
    list_encoders,
    list_fusions,
    list_heads,
)

__version__ = "0.1.0"


def fit(
    config: Any,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool | None = None,
    callbacks: Sequence[Any] | None = None,
    launch: bool = False,
) -> Any:
    """Train a model from a Config, a YAML path or a dict; see :func:`fusiondx.engine.run.fit`.

    ``callbacks``: extra Lightning callbacks (``lightning.Callback`` instances) called during the
    training, after FusionDx's own: the way to hook into an epoch, a batch or the end of training.
    ``launch``: with ``train.devices`` above 1, let Lightning start the other processes by
    re-running this script (only for a script run as ``python script.py``; under torchrun or
    srun it is not needed). Without it such a config is refused with the ways to start it.
    """
    from fusiondx.engine.run import fit as _fit

    cfg = config if isinstance(config, Config) else load_config(config)
    return _fit(
        cfg,
        resume=resume,
        overwrite=overwrite,
        progress=progress,
        callbacks=callbacks,
        launch=launch,
    )


def evaluate(run_dir: Any, data: Any = None, root: Any = None) -> Any:
    """Metrics of a trained run; see :func:`fusiondx.engine.run.evaluate`."""
    from pathlib import Path

    from fusiondx.engine.run import evaluate as _evaluate

    return _evaluate(
        Path(run_dir), Path(data) if data else None, Path(root) if root else None, progress=False
    )


def predict(
    run_dir: Any,
    data: Any,
    out: Any,
    root: Any = None,
    *,
    overwrite: bool = False,
    format: str = "csv",
) -> Any:
    """Predictions for new cases; see :func:`fusiondx.engine.run.predict` (``format="fhir"``:
    RiskAssessment resources)."""
    from pathlib import Path

    from fusiondx.engine.run import predict as _predict

    return _predict(
        Path(run_dir),
        Path(data),
        Path(out),
        Path(root) if root else None,
        progress=False,
        overwrite=overwrite,
        format=format,
    )


def suggest(
    run_dir: Any,
    pool: Any,
    *,
    n: int = 50,
    strategy: str = "entropy",
    diversity: bool = False,
    out: Any = None,
    root: Any = None,
    overwrite: bool = False,
) -> Any:
    """Rank unlabelled cases for expert labelling (active learning); see
    :func:`fusiondx.engine.suggest.suggest`. Returns a ``Suggestions`` (``.table`` a DataFrame);
    writes it as CSV to ``out`` when given."""
    from pathlib import Path

    from fusiondx.engine.suggest import suggest as _suggest

    return _suggest(
        Path(run_dir),
        Path(pool),
        n=n,
        strategy=strategy,
        diversity=diversity,
        out=Path(out) if out else None,
        root=Path(root) if root else None,
        overwrite=overwrite,
    )


def export_model(
    run_dir: Any,
    out: Any = None,
    *,
    int8: bool = False,
    tolerance: float = 0.005,
    overwrite: bool = False,
    int8_recipe: str | None = None,
) -> Any:
    """Export a run to ONNX (see :func:`fusiondx.export.export_run`); with ``int8`` also quantise
    it (see :func:`fusiondx.quantize.quantize_run`) and return the
    :class:`~fusiondx.quantize.Int8Result` instead of the float :class:`~fusiondx.export.Export`.
    The int8 model is refused (a :class:`RunError`) when its test metric drops by more than
    ``tolerance`` whatever the recipe (``int8_recipe``: one recipe of
    :mod:`fusiondx.quantize_recipes` instead of trying them in order). (Not named ``export``: that is the :mod:`fusiondx.export` module.)"""
    from pathlib import Path

    from fusiondx.export import export_run
    from fusiondx.quantize import quantize_run

    e = export_run(Path(run_dir), Path(out) if out else None, progress=False, overwrite=overwrite)
    if not int8:
        return e
    return quantize_run(
        Path(run_dir),
        e.path,
        tolerance=tolerance,
        progress=False,
        overwrite=overwrite,
        recipe=int8_recipe,
    )


def distill(
    run_dir: Any,
    student: Any,
    *,
    alpha: float = 0.5,
    temperature: float = 2.0,
    out: Any = None,
    alone: Any = None,
    n_boot: int = 1000,
    overwrite: bool = False,
) -> Any:
    """Train a light student config on a run's soft labels and compare teacher, distilled
    student and student alone on the test split; see :func:`fusiondx.study.distill.distill`.
    Returns a ``DistillResult`` (``.results``: the table's numbers; ``.out_dir``)."""
    from pathlib import Path

    from fusiondx.study.distill import distill as _distill

    return _distill(
        Path(run_dir),
        student,
        alpha=alpha,
        temperature=temperature,
        out=Path(out) if out else None,
        alone=Path(alone) if alone else None,
        n_boot=n_boot,
        progress=False,
        overwrite=overwrite,
    )


def explain(
    run_dir: Any,
    case_id: str,
    *,
    data: Any = None,
    root: Any = None,
    out: Any = None,
    task: str | None = None,
    target: str | None = None,
) -> Any:
    """Explain one case of a trained run (HTML page, PNGs, JSON); see
    :func:`fusiondx.explanations.explain_case`. Returns the :class:`~fusiondx.explanations.CaseExplanation`."""
    from pathlib import Path

    from fusiondx.explanations import explain_case

    return explain_case(
        Path(run_dir),
        str(case_id),
        data=Path(data) if data else None,
        root=Path(root) if root else None,
        out=Path(out) if out else None,
        task=task,
        target=target,
    )


def federate(
    config: Any,
    site_column: str = "site",
    *,
    rounds: int = 5,
    strategy: str = "fedavg",
    local_epochs: int = 1,
    proximal_mu: float = 0.01,
    out: Any = None,
    mode: str = "simulation",
    compare: bool = True,
    n_boot: int = 1000,
) -> dict[str, Any]:
    """Federated training across the sites of a manifest with Flower (the ``federated``
    extra), beside the centralised model and each site's own; see
    :func:`fusiondx.federated.run.federate`. Returns the results (also in ``out/results.json``)."""
    from pathlib import Path

    from fusiondx.federated import federate as run

    cfg = config if isinstance(config, Config) else load_config(config)
    return run(
        cfg,
        site_column,
        rounds=rounds,
        strategy=strategy,
        local_epochs=local_epochs,
        proximal_mu=proximal_mu,
        out_dir=Path(out) if out else None,
        mode=mode,
        compare=compare,
        n_boot=n_boot,
    )


def serve(
    run_dir: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    token: str | None = None,
    max_upload_mb: float = 20.0,
) -> None:
    """Serve a trained run over HTTP (FastAPI + ONNX Runtime, a page at /) until interrupted;
    see :func:`fusiondx.serving.server.serve`. For an app object (tests, embedding), see
    :func:`fusiondx.serving.app.create_app`."""
    from pathlib import Path

    from fusiondx.serving.server import serve as start

    start(
        Path(run_dir),
        host=host,
        port=port,
        workers=workers,
        token=token,
        max_upload_mb=max_upload_mb,
    )


def prepare(dataset: str, path: Any, out: Any, **options: Any) -> Any:
    """A dataset, FHIR export or OMOP database as a manifest + config; see
    :func:`fusiondx.datasets.prepare.prepare_dataset`, e.g.
    ``prepare("fhir", "fhir/", "prepared/", cohort="cohort.yaml", image_root="files/")``."""
    from fusiondx.datasets.prepare import prepare_dataset

    return prepare_dataset(dataset, path, out, **options)


def interop_example(out: Any, *, n_cases: int = 200, seed: int = 0, bulk: bool = False) -> Any:
    """The built-in cohort as synthetic FHIR bundles (or NDJSON) and OMOP tables, with a cohort
    file; see :func:`fusiondx.datasets._fhir_synthetic.write_interop_example`."""
    from fusiondx.datasets._fhir_synthetic import write_interop_example

    return write_interop_example(out, n_cases=n_cases, seed=seed, bulk=bulk)


__all__ = [
    "Config",
    "ConfigError",
    "DataError",
    "FusionDxError",
    "RunError",
    "create_encoder",
    "create_fusion",
    "create_head",
    "distill",
    "evaluate",
    "explain",
    "export_model",
    "federate",
    "fit",
    "interop_example",
    "list_encoders",
    "list_fusions",
    "list_heads",
    "load_config",
    "predict",
    "prepare",
    "serve",
    "suggest",
]

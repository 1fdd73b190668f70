"""int8 ONNX of an exported run: static QDQ quantisation, kept only when the test metric holds.

ONNX Runtime's own tools do the work (:func:`onnxruntime.quantization.quantize_static`, QDQ
format, per-channel weights): ``quant_pre_process`` folds and infers shapes first, then a
:class:`~onnxruntime.quantization.CalibrationDataReader` feeds training cases decoded with the
run's own preprocessing, so activation ranges come from the data the model was fitted on and
never from the cases it is judged on. Only the operators that carry weights (convolutions and
matrix products) are quantised: they hold nearly all of the bytes and the time, while quantising
additions, gathers or normalisations adds Q/DQ pairs that cost accuracy and save nothing.

The int8 file (``model.int8.onnx`` beside the float ``model.onnx``) is then judged on the run's
test split: both files are scored with ONNX Runtime and, when any task's main metric (AUROC for a
classifier, the head's ``primary_metric`` otherwise) drops by more than the tolerance, the int8
file is deleted and a :class:`RunError` says by how much. The recipes of
:mod:`fusiondx.quantize_recipes` are tried in order (by default: the first layer of each encoder
kept in float, then the fusion's output and the heads in float too) and the first within
the tolerance is kept. ``int8.json`` in the run records the sizes, the latency per case and the
metrics before and after, kept or not, the recipe kept and every attempt. The float model's
metadata (the calibration's ``fusiondx.posthoc``) travels into the int8 file; the calibration
itself is part of the graph, so the int8 outputs are calibrated logits like the float ones.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fusiondx.errors import RunError
from fusiondx.quantize_measure import feeds, judge, latency_ms, onnx_bytes, outputs
from fusiondx.quantize_recipes import QUANTIZED_OPS, Recipe, recipes

if TYPE_CHECKING:
    from fusiondx.data.store import CaseStore

DEFAULT_TOLERANCE = 0.005
CALIBRATION_CASES = 256
CALIBRATION_BATCH = 32
INT8_KEY = "fusiondx.int8"


@dataclass
class Int8Result:
    """A kept int8 model: where it is, and what ``int8.json`` says about it."""

    path: Path
    float_path: Path
    report_file: Path
    report: dict[str, Any]


def int8_path(float_path: Path) -> Path:
    """Where the int8 twin of an ONNX file goes: ``model.onnx`` -> ``model.int8.onnx``."""
    float_path = Path(float_path)
    return float_path.with_name(f"{float_path.stem}.int8.onnx")


def _note(progress: bool, text: str) -> None:
    if progress:
        print(text, file=sys.stderr, flush=True)


def _ort() -> Any:
    try:
        import onnxruntime as ort
        from onnxruntime import quantization  # noqa: F401
    except ImportError as e:  # pragma: no cover - depends on the install
        raise RunError(
            "int8 quantisation needs onnx and onnxruntime.", fix="pip install 'fusiondx[export]'"
        ) from e
    return ort


def _reader(store: CaseStore, idx: np.ndarray, names: list[str]) -> Any:
    """A calibration data reader over the cases ``idx``, a batch at a time."""
    from onnxruntime.quantization import CalibrationDataReader

    class _Cases(CalibrationDataReader):
        def __init__(self) -> None:
            self._batches: Iterator[np.ndarray] = iter(
                idx[i : i + CALIBRATION_BATCH] for i in range(0, len(idx), CALIBRATION_BATCH)
            )

        def get_next(self) -> dict[str, np.ndarray] | None:
            chunk = next(self._batches, None)
            return None if chunk is None else feeds(store, chunk, names)

    return _Cases()


def _quantize(
    float_path: Path, out: Path, reader: Any, extra_meta: dict[str, str], recipe: Recipe
) -> list[str]:
    """Static QDQ quantisation of ``float_path`` into ``out`` by ``recipe``, with the float
    file's metadata; returns the weight operators kept in float."""
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from fusiondx.quantize_recipes import quantize_options

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantiser logs advice per tensor at WARNING
    try:
        with tempfile.TemporaryDirectory(prefix="fusiondx-int8-") as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            source = Path(tmp) / "pre.onnx"
            try:
                # Symbolic shape inference does not follow the dynamo exporter's graphs; ONNX's
                # own shape inference and ONNX Runtime's graph optimisation still help.
                quant_pre_process(str(float_path), str(source), skip_symbolic_shape=True)
            except Exception:  # noqa: BLE001  (an optimisation only: quantise the file as it is)
                source = float_path
            target = Path(tmp) / "int8.onnx"
            options = quantize_options(recipe, source)
            quantize_static(
                str(source),
                str(target),
                reader,
                quant_format=QuantFormat.QDQ,
                op_types_to_quantize=list(QUANTIZED_OPS),
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                **options,
            )
            proto = onnx.load_model(str(target))
            have = {p.key for p in proto.metadata_props}
            meta = {p.key: p.value for p in onnx.load_model(str(float_path)).metadata_props}
            for key, value in {**meta, **extra_meta}.items():
                if key not in have:
                    entry = proto.metadata_props.add()
                    entry.key, entry.value = key, value
            onnx.save_model(proto, str(target))
            shutil.move(str(target), str(out))
    finally:
        root.setLevel(level)
    return list(options["nodes_to_exclude"])


def _is_int8(path: Path) -> bool:
    """Whether ``path`` is an int8 model written by this module (an earlier one may be replaced)."""
    if not path.is_file():
        return False
    try:
        import onnx

        proto = onnx.load_model(str(path), load_external_data=False)
        return any(p.key == INT8_KEY for p in proto.metadata_props)
    except Exception:  # noqa: BLE001  (not ONNX, or onnx missing: not ours)
        return False


def quantize_run(
    run_dir: Path,
    onnx_file: Path | None = None,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    progress: bool = True,
    overwrite: bool = False,
    recipe: str | list[str] | None = None,
) -> Int8Result:
    """Quantise a run's exported ONNX model to int8 and keep it only if its test metric holds.

    ``onnx_file`` is the float model ``fusiondx export`` wrote (default ``<run_dir>/model.onnx``);
    the int8 model goes beside it (:func:`int8_path`) and the measurements to
    ``<run_dir>/int8.json``. Raises :class:`RunError` (and deletes the int8 file) when a task's
    test metric drops by more than ``tolerance`` whatever the recipe, or cannot be measured.
    ``recipe`` names the recipe(s) to try (:mod:`fusiondx.quantize_recipes`; default: all of
    ``RECIPES`` in order, the first within the tolerance kept).
    """

    from fusiondx.data.store import prepare_with_state
    from fusiondx.engine import runfolder
    from fusiondx.engine.rundir import RunDir, write_json
    from fusiondx.export import flatten

    ort = _ort()
    try:
        chosen = recipes([recipe] if isinstance(recipe, str) else recipe)
    except ValueError as e:
        raise RunError(str(e), fix="leave out --int8-recipe to try every recipe in order") from None
    run = RunDir(Path(run_dir))
    float_path = Path(onnx_file) if onnx_file is not None else run.onnx_file
    if not float_path.is_file():
        raise RunError(
            f"There is no ONNX model at '{float_path}' to quantise.",
            file=float_path,
            fix=f"run `fusiondx export {run.path} --int8`, which exports and then quantises",
        )
    cfg, model, state = run.load()
    out = int8_path(float_path)
    runfolder.check_output(
        out,
        inputs=[cfg.data.manifest],
        run_dir=run.path,
        keep=out.name,
        overwrite=overwrite,
        ours=_is_int8(out),
        option="the int8 model",
    )
    prepared = prepare_with_state(
        cfg, state, cfg.data.manifest, cfg.data.data_root, need_labels=True, progress=progress
    )
    store = prepared.store
    store.split = run.splits(store.ids)
    layout, _ = flatten(store.batch(np.arange(1))["inputs"])
    names = [m if k == "" else f"{m}.{k}" for m, k in layout] + ["mask"]
    float_session = ort.InferenceSession(str(float_path), providers=["CPUExecutionProvider"])
    have = [i.name for i in float_session.get_inputs()]
    if have != names:
        raise RunError(
            f"The ONNX model '{float_path}' takes inputs {have}, not this run's {names}.",
            file=float_path,
            fix=f"export this run again with `fusiondx export {run.path}` and quantise that file",
        )
    train, test = store.indices("train"), store.indices("test")
    if len(test) < 2:
        raise RunError(
            f"The run's test split has {len(test)} case(s); the int8 model cannot be judged on it.",
            file=run.splits_file,
            fix="train the run with a test split of at least a few dozen cases",
        )
    rng = np.random.default_rng(cfg.seed)
    calib = np.sort(rng.permutation(train)[:CALIBRATION_CASES])

    before = outputs(float_session, store, test, names)
    attempts: list[dict[str, Any]] = []
    for rec in chosen:
        _note(
            progress,
            f"Quantising {float_path.name} to int8 (recipe {rec.name}), calibrated on "
            f"{len(calib)} training cases; scoring {len(test)} test cases",
        )
        out.unlink(missing_ok=True)
        meta = {
            INT8_KEY: json.dumps(
                {
                    "source": float_path.name,
                    "calibration_cases": int(len(calib)),
                    "ops": QUANTIZED_OPS,
                    "recipe": rec.describe(),
                }
            )
        }
        try:
            kept_float = _quantize(float_path, out, _reader(store, calib, names), meta, rec)
        except Exception as e:  # noqa: BLE001  (ONNX Runtime's calibrators fail on some graphs)
            attempts.append({"recipe": rec.describe(), "failed": f"{type(e).__name__}: {e}"})
            _note(progress, f"  recipe {rec.name} failed: {type(e).__name__}: {e}")
            continue
        int8_session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        after = outputs(int8_session, store, test, names)
        graph_tasks = {o.name for o in float_session.get_outputs()}  # no text-generating task
        infos = [t for t in prepared.tasks if t.name in graph_tasks]
        tasks, problems = judge(model, infos, store, test, before, after, tolerance)
        kept_recipe, int8_bytes = rec, onnx_bytes(out)
        attempts.append(
            {
                "recipe": rec.describe(),
                "float_nodes": kept_float,
                "drops": {t: v["drop"] for t, v in tasks.items()},
                "within_tolerance": not problems,
            }
        )
        if not problems:
            break
        _note(progress, f"  recipe {rec.name}: " + "; ".join(problems))
    if not any("drops" in a for a in attempts):
        raise RunError(
            "No int8 recipe could quantise this model: "
            + "; ".join(f"{a['recipe']['name']}: {a['failed']}" for a in attempts),
            file=float_path,
            fix="try another --int8-recipe (e.g. all-ops), or use the float model",
        )
    report = {
        "kept": not problems,
        "recipe": kept_recipe.name,
        "tolerance": tolerance,
        "float_file": str(float_path),
        "int8_file": str(out),
        "float_bytes": onnx_bytes(float_path),
        "int8_bytes": int8_bytes,
        "float_ms_per_case": latency_ms(float_session, store, test, names),
        "int8_ms_per_case": latency_ms(int8_session, store, test, names),
        "calibration_cases": int(len(calib)),
        "test_cases": int(len(test)),
        "quantized_ops": list(QUANTIZED_OPS),
        "tasks": tasks,
        "attempts": attempts,
    }
    del int8_session
    if problems:
        report["refused"] = problems
        out.unlink(missing_ok=True)
    write_json(run.int8_file, report)
    if problems:
        tried = ", ".join(
            f"{t['recipe']['name']} (drop "
            + ", ".join(f"{d:.4f}" for d in t["drops"].values())
            + ")"
            for t in attempts
            if "drops" in t
        )
        raise RunError(
            "The int8 model was not kept: " + "; ".join(problems) + f" (recipes tried: {tried})"
            f". {out.name} was deleted; the measurements are in {run.int8_file}.",
            file=out,
            fix=f"use the float {float_path.name}, or accept a larger drop with --tolerance "
            "(a run trained longer, or on more cases, usually quantises better)",
        )
    return Int8Result(out, float_path, run.int8_file, report)


def describe(result: Int8Result) -> str:
    """One paragraph on a kept int8 model: size, latency and metrics before and after."""
    r = result.report
    parts = [
        f"Wrote {result.path}: {r['int8_bytes'] / 1e6:.2f} MB "
        f"(float {r['float_bytes'] / 1e6:.2f} MB), "
        f"{r['int8_ms_per_case']:.2f} ms per case (float {r['float_ms_per_case']:.2f} ms)."
    ]
    for task, t in r["tasks"].items():
        parts.append(
            f"Task {task}: test {t['metric']} {t['float']:.4f} -> {t['int8']:.4f} "
            f"(drop {t['drop']:+.4f}, tolerance {r['tolerance']:g})."
        )
    parts.append(f"Measurements in {result.report_file}.")
    return " ".join(parts)

"""ONNX export of a trained run, checked against PyTorch on real cases before it is kept.

The model takes nested inputs (modality -> tensor or {array name: tensor}) and a presence
mask; ONNX needs a flat list of named tensors. :class:`FlatModel` is the model with that flat
signature, in the store's order: one input per array, named ``<modality>`` or
``<modality>.<array>``, then ``mask``; one output per task (logits, values, risks, boxes or
mask logits). Report generation decodes token by token in Python, which the graph does not
hold: :func:`export_run` exports a run's other tasks and names the generation tasks it left to
PyTorch (``fusiondx serve`` answers them there); a run with nothing but generation tasks is
refused, and :func:`export_onnx` refuses a generation task it is asked for.

A run with a post-hoc layer (``posthoc.json``) has its calibration baked into the graph: a
classification task's output is the calibrated logits (``logits / T``, or ``logits * scale +
bias`` for vector scaling), so sigmoid / softmax of it are the probabilities ``predict`` writes.
The stored thresholds and conformal quantiles travel in the model's metadata
(``fusiondx.posthoc``, JSON), since a threshold is a decision, not part of the network.
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from fusiondx.errors import RunError

if TYPE_CHECKING:
    from fusiondx.models.multimodal import MultimodalModel

CHECK_CASES = 64


class FlatModel(nn.Module):
    """``model.predict`` with flat tensor inputs (see the module docstring)."""

    def __init__(
        self,
        model: MultimodalModel,
        layout: list[tuple[str, str]],
        tasks: list[str],
        scaling: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.layout = layout
        self.tasks = tasks
        # task -> (scale, bias) of its logits: the calibration of posthoc.json, as constants.
        self.scaling = dict(scaling or {})

    @property
    def input_names(self) -> list[str]:
        return [m if k == "" else f"{m}.{k}" for m, k in self.layout] + ["mask"]

    def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        inputs: dict[str, Any] = {}
        for (m, k), t in zip(self.layout, tensors[:-1], strict=True):
            if k == "":
                inputs[m] = t
            else:
                inputs.setdefault(m, {})[k] = t
        out = self.model.predict(inputs, tensors[-1], tasks=self.tasks)
        return tuple(self._calibrated(t, out[t]) for t in self.tasks)

    def _calibrated(self, task: str, logits: torch.Tensor) -> torch.Tensor:
        if task not in self.scaling:
            return logits
        scale, bias = self.scaling[task]
        return logits * scale + bias


def scaling_of(posthoc: dict[str, Any] | None) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Per task, the (scale, bias) of its logits that ``posthoc.json``'s calibration applies."""
    out = {}
    for task, entry in ((posthoc or {}).get("tasks") or {}).items():
        c = entry.get("calibration")
        if not c:
            continue
        if c["method"] == "vector":
            scale, bias = c["scale"], c["bias"]
        else:
            scale = [1.0 / t for t in c["temperature"]]
            bias = [0.0] * len(scale)
        out[task] = (
            torch.tensor(scale, dtype=torch.float32),
            torch.tensor(bias, dtype=torch.float32),
        )
    return out


def flatten(batch_inputs: dict[str, Any]) -> tuple[list[tuple[str, str]], list[torch.Tensor]]:
    """The layout and tensors of a batch's nested inputs, modalities and arrays in sorted order."""
    layout, tensors = [], []
    for m in sorted(batch_inputs):
        v = batch_inputs[m]
        items = sorted(v.items()) if isinstance(v, dict) else [("", v)]
        for k, t in items:
            layout.append((m, k))
            tensors.append(t)
    return layout, tensors


@dataclass
class Export:
    path: Path
    max_abs_diff: float
    cases_checked: int
    input_names: list[str]
    output_names: list[str]
    pytorch_tasks: list[str] = field(default_factory=list)  # left out: they generate text


def decoding_tasks(model: MultimodalModel, tasks: list[str]) -> list[str]:
    """The tasks whose heads decode token by token (report generation): no ONNX graph holds them,
    so ``fusiondx serve`` answers them with the PyTorch model."""
    heads = getattr(model, "heads", {})
    return [t for t in tasks if t in heads and getattr(heads[t], "decodes", False)]


def export_onnx(
    model: MultimodalModel,
    tasks: list[str],
    batch: dict[str, Any],
    path: Path,
    *,
    tolerance: float = 1e-4,
    posthoc: dict[str, Any] | None = None,
) -> Export:
    """Write ``model`` as ONNX to ``path`` and check ONNX Runtime against PyTorch on ``batch``.

    ``batch`` is a store batch (real cases, several of them so the batch axis is dynamic).
    ``posthoc`` is the run's ``posthoc.json``: its calibration is baked into the outputs and
    the whole of it is stored as the model's ``fusiondx.posthoc`` metadata.
    Raises :class:`RunError` and deletes the file when the outputs differ by more than
    ``tolerance`` (absolute, relative to the output's scale above 1).
    """
    try:
        import onnxruntime as ort
    except ImportError as e:  # pragma: no cover - depends on the install
        raise RunError(
            "ONNX export needs onnx, onnxscript and onnxruntime.",
            fix="pip install 'fusiondx[export]'",
        ) from e
    decoding = decoding_tasks(model, tasks)
    if decoding:
        raise RunError(
            f"Task(s) {decoding} generate text token by token, which ONNX export does not cover.",
            fix="export a run without a generation head",
        )
    model = model.eval()
    layout, tensors = flatten(batch["inputs"])
    mask = batch["mask"]
    flat = FlatModel(model, layout, tasks, scaling_of(posthoc)).eval()
    args = (*tensors, mask)
    names = flat.input_names
    batch_dim = torch.export.Dim("batch", min=1, max=65536)
    path.parent.mkdir(parents=True, exist_ok=True)
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # "torchvision is not installed" notes
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        # The fused attention fast path has no ONNX form; the math path gives the same numbers.
        fastpath = torch.backends.mha.get_fastpath_enabled()
        torch.backends.mha.set_fastpath_enabled(False)
        try:
            torch.onnx.export(
                flat,
                args,
                str(path),
                input_names=names,
                output_names=list(tasks),
                dynamic_shapes=(tuple({0: batch_dim} for _ in args),),
                dynamo=True,
                verbose=False,
                optimize=True,
            )
            expected = [o.numpy() for o in flat(*args)]
        finally:
            torch.backends.mha.set_fastpath_enabled(fastpath)
    if posthoc:
        _add_metadata(path, "fusiondx.posthoc", json.dumps(posthoc, allow_nan=False, default=str))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {n: t.numpy() for n, t in zip(names, args, strict=True)})
    diff = max(
        float(np.max(np.abs(g - e) / np.maximum(1.0, np.abs(e))))
        for g, e in zip(got, expected, strict=True)
    )
    if not diff <= tolerance:
        path.unlink(missing_ok=True)
        raise RunError(
            f"The ONNX model's outputs differ from PyTorch's by up to {diff:.2g} "
            f"(tolerance {tolerance:g}); the file was not kept.",
            fix="report this with the run's config; export in float32 on CPU",
        )
    return Export(path, diff, int(mask.shape[0]), names, list(tasks))


def _add_metadata(path: Path, key: str, value: str) -> None:
    import onnx
    from onnx.external_data_helper import _get_all_tensors, uses_external_data

    # The exporter may have put the weights in a side file; they are saved inline below, so
    # that file would be left behind, stale (and not a file of the run).
    lean = onnx.load_model(str(path), load_external_data=False)
    side = {
        i.value
        for t in _get_all_tensors(lean)
        if uses_external_data(t)
        for i in t.external_data
        if i.key == "location"
    }
    proto = onnx.load_model(str(path))
    entry = proto.metadata_props.add()
    entry.key, entry.value = key, value
    onnx.save_model(proto, str(path))
    for name in side:
        stale = path.parent / name
        if stale.parent == path.parent and stale.is_file():
            stale.unlink()


def export_run(
    run_dir: Path, out: Path | None = None, *, progress: bool = True, overwrite: bool = False
) -> Export:
    """Export a trained run to ONNX (default ``<run_dir>/model.onnx``), checked on its test cases.

    The parity check runs on up to 64 test cases of the run's own manifest, decoded with the
    run's fitted preprocessing, so the data must still be where the run found it. An existing
    ``out`` that is not an ONNX model exported from PyTorch is replaced only with ``overwrite``.
    """
    from fusiondx.data.store import prepare_with_state
    from fusiondx.engine import runfolder
    from fusiondx.engine.rundir import RunDir

    run = RunDir(run_dir)
    cfg, model, state = run.load()
    out = out or run.onnx_file
    runfolder.check_output(
        out,
        inputs=[cfg.data.manifest],
        run_dir=run_dir,
        keep=run.onnx_file.name,
        overwrite=overwrite,
        ours=_is_exported_onnx(out),
    )
    prepared = prepare_with_state(
        cfg, state, cfg.data.manifest, cfg.data.data_root, need_labels=False, progress=progress
    )
    store = prepared.store
    store.split = run.splits(store.ids)
    idx = store.indices("test")[:CHECK_CASES]
    if len(idx) < 2:
        idx = np.arange(min(len(store), CHECK_CASES))
    tasks = [t.name for t in prepared.tasks]
    decoding = decoding_tasks(model, tasks)
    exported = [t for t in tasks if t not in decoding]
    if not exported:
        raise RunError(
            f"Every task of this run ({', '.join(decoding)}) generates text token by token, "
            "which ONNX export does not cover, so there is no graph to export.",
            file=run.path / "model.pt",
            fix=f"serve it with PyTorch: fusiondx serve {run.path}",
        )
    e = export_onnx(model, exported, store.batch(idx), out, posthoc=run.posthoc())
    e.pytorch_tasks = decoding
    return e


def _is_exported_onnx(path: Path) -> bool:
    """Whether ``path`` is an ONNX model written by PyTorch's exporter (an earlier export)."""
    if not path.is_file():
        return False
    try:
        import onnx

        return onnx.load_model(str(path), load_external_data=False).producer_name == "pytorch"
    except Exception:  # noqa: BLE001  (not ONNX at all, or onnx not installed: not ours)
        return False

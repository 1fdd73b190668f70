"""The served model in two ONNX graphs: the encoders, run once per case, and the fusion + heads,
run over the case's 2^M presence masks for the exact modality Shapley values.

An encoder never sees the presence mask (a missing modality is a zero placeholder that the
fusion masks out), so ``fusion(encoders(x), mask)`` for every mask equals the whole model run on
as many masked copies of ``x``, at the cost of one encoder pass instead of 2^M. Models whose
fusion or heads read more than each modality's embedding (token or level fusions, heads that
read feature maps or tokens) have no such split: :func:`splittable` says so and the service
runs the whole model (``model.onnx``) over the masked copies instead. Heads that generate text
are in neither graph (the service runs them in PyTorch), so they do not stop a split.

The graphs are built from the run's ``model.pt`` when a server worker starts, into its private
folder (never into the run folder), with the calibration of ``posthoc.json`` baked into the
outputs as :mod:`fusiondx.export` does; :func:`export_split` checks them against the whole
model in PyTorch on every mask before they are used.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch
from torch import nn

from fusiondx.export import FlatModel, decoding_tasks, scaling_of
from fusiondx.heads import Head, HeadContext
from fusiondx.models.late import LateFusion
from fusiondx.models.multimodal import FeatureFusion

if TYPE_CHECKING:
    from fusiondx.models.multimodal import MultimodalModel

log = logging.getLogger("fusiondx.serving")


def splittable(model: MultimodalModel, tasks: list[str] | None = None) -> str | None:
    """None when the model splits into encoders and fusion + heads of ``tasks`` (default all),
    else why it does not."""
    if isinstance(model, LateFusion):
        return None
    if not isinstance(model, FeatureFusion):
        return f"a {type(model).__name__} model"
    if model.fusion.uses_tokens or model.fusion.uses_levels:
        return "its fusion reads each modality's tokens or levels, not one embedding"
    for name, head in model.heads.items():
        if tasks is not None and name not in tasks:
            continue
        h = cast(Head, head)
        if h.needs or h.decodes:
            return f"the head of task '{name}' reads more than the fused vector"
    return None


def _nest(layout: list[tuple[str, str]], tensors: tuple[torch.Tensor, ...]) -> dict[str, Any]:
    inputs: dict[str, Any] = {}
    for (m, k), t in zip(layout, tensors, strict=True):
        if k == "":
            inputs[m] = t
        else:
            inputs.setdefault(m, {})[k] = t
    return inputs


class EncoderGraph(nn.Module):
    """Flat inputs (the layout of ``model.onnx``, without ``mask``) -> one embedding per
    modality, in sorted modality order."""

    def __init__(self, model: MultimodalModel, layout: list[tuple[str, str]]) -> None:
        super().__init__()
        self.model, self.layout = model, layout

    def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        feats = self.model.embed(_nest(self.layout, tensors))
        return tuple(feats[m] for m in self.model.modalities)


def _no_context(_: str) -> Any:
    raise RuntimeError("a split model's heads read only the fused vector")


class FusionGraph(nn.Module):
    """One embedding per modality + ``mask`` -> one (calibrated) output per task."""

    def __init__(self, flat: FlatModel) -> None:
        super().__init__()
        self.flat = flat
        self.model = flat.model

    def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        model, mask = self.model, tensors[-1]
        feats = dict(zip(model.modalities, tensors[:-1], strict=True))
        if isinstance(model, LateFusion):
            # LateFusion.run after its embed(): each modality's own probabilities, fused per task.
            out = {}
            for task, probs in model._modality_probs(feats).items():
                fused = model.fusion[task](probs, mask)
                out[task] = model.task_head(task).from_probs(fused)
        else:
            # FeatureFusion.run for heads that read only the fused vector.
            ff = cast(FeatureFusion, model)
            fused = ff.fusion(feats, mask)
            ctx = HeadContext(mask, model.modalities, _no_context, _no_context)
            out = {t: h(fused, ctx, None) for t, h in ff._heads() if t in self.flat.tasks}
        return tuple(self.flat._calibrated(t, out[t]) for t in self.flat.tasks)


@dataclass
class Split:
    """The two graphs' files and their input names."""

    encoders: Path
    fusion: Path
    encoder_inputs: list[str]
    features: list[str]  # the fusion graph's inputs before "mask"
    max_abs_diff: float


def _export(
    module: nn.Module,
    args: tuple[torch.Tensor, ...],
    names: list[str],
    outputs: list[str],
    path: Path,
) -> None:
    batch = torch.export.Dim("batch", min=1, max=1 << 20)
    torch.onnx.export(
        module,
        args,
        str(path),
        input_names=names,
        output_names=outputs,
        dynamic_shapes=(tuple({0: batch} for _ in args),),
        dynamo=True,
        verbose=False,
        optimize=True,
    )


def _parts(
    model: MultimodalModel,
    tasks: list[str],
    example: dict[str, Any],
    posthoc: dict[str, Any] | None,
) -> tuple[FlatModel, EncoderGraph, FusionGraph, list[torch.Tensor], torch.Tensor, int]:
    """The whole model, its two parts, the example's flat tensors, every mask (s-major: each
    subset of the modalities for all cases, then the next) and the number of subsets."""
    from fusiondx.explanations.shapley import MAX_MODALITIES, subsets
    from fusiondx.export import flatten

    model = model.eval()
    layout, tensors = flatten(example)
    flat = FlatModel(model, layout, tasks, scaling_of(posthoc)).eval()
    enc, fus = EncoderGraph(model, layout).eval(), FusionGraph(flat).eval()
    n, m = int(tensors[0].shape[0]), len(model.modalities)
    coalitions = subsets(m) if m <= MAX_MODALITIES else torch.ones(1, m)
    masks = coalitions.bool().repeat_interleave(n, dim=0)
    return flat, enc, fus, tensors, masks, len(coalitions)


def _tile(t: torch.Tensor, s: int) -> torch.Tensor:
    return t.repeat(s, *([1] * (t.dim() - 1)))


def split_difference(
    model: MultimodalModel,
    tasks: list[str],
    example: dict[str, Any],
    *,
    posthoc: dict[str, Any] | None = None,
) -> float:
    """Largest difference (absolute, relative above 1) between the split model in PyTorch and the
    whole one on ``example`` under every presence mask; the model must be :func:`splittable`."""
    flat, enc, fus, tensors, masks, s = _parts(model, tasks, example, posthoc)
    with torch.no_grad():
        got = fus(*(_tile(f, s) for f in enc(*tensors)), masks)
        whole = flat(*(_tile(t, s) for t in tensors), masks)
    return max(
        float(torch.max(torch.abs(g - w) / torch.clamp(torch.abs(w), min=1.0)))
        for g, w in zip(got, whole, strict=True)
    )


def export_split(
    model: MultimodalModel,
    tasks: list[str],
    example: dict[str, Any],
    folder: Path,
    *,
    posthoc: dict[str, Any] | None = None,
    tolerance: float = 1e-4,
) -> Split | None:
    """Write ``encoders.onnx`` and ``fusion.onnx`` into ``folder``; None (and a log line) when
    the model does not split or the split differs from the whole model by more than
    ``tolerance`` on ``example`` (nested inputs of a few cases) under every presence mask.
    """
    why = splittable(model, tasks)
    if why is not None:
        log.info("serving the whole model over masked copies: %s", why)
        return None
    flat, enc, fus, tensors, masks, s = _parts(model, tasks, example, posthoc)
    names = flat.input_names[:-1]
    features = [f"{mod}.features" for mod in model.modalities]
    folder.mkdir(parents=True, exist_ok=True)
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        # The fused attention fast path has no ONNX form; the math path gives the same numbers.
        fastpath = torch.backends.mha.get_fastpath_enabled()
        torch.backends.mha.set_fastpath_enabled(False)
        try:
            diff = split_difference(model, tasks, example, posthoc=posthoc)
            if not diff <= tolerance:
                log.warning(
                    "the split model differs from the whole one by %.2g; serving the whole model",
                    diff,
                )
                return None
            repeated = tuple(_tile(f, s) for f in enc(*tensors))
            _export(enc, tuple(tensors), names, features, folder / "encoders.onnx")
            _export(
                fus, (*repeated, masks), [*features, "mask"], list(tasks), folder / "fusion.onnx"
            )
        finally:
            torch.backends.mha.set_fastpath_enabled(fastpath)
    return Split(folder / "encoders.onnx", folder / "fusion.onnx", names, features, diff)


def example_inputs(
    shapes: dict[str, dict[str, tuple[tuple[int, ...], np.dtype]]], n: int = 4, seed: int = 0
) -> dict[str, Any]:
    """Nested inputs of ``n`` made-up cases of the given per-modality array shapes: floats drawn
    at random, integer ids (tokens, categories) 1, the unknown id every vocabulary has (all
    padding would leave a text encoder nothing to attend to)."""
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {}
    for mod, arrays in sorted(shapes.items()):
        nested = {}
        for k, (shape, dtype) in sorted(arrays.items()):
            if np.issubdtype(dtype, np.floating):
                a = rng.standard_normal((n, *shape)).astype(dtype)
            else:
                a = np.ones((n, *shape), dtype=dtype)
            nested[k] = torch.from_numpy(a)
        out[mod] = nested[""] if set(nested) == {""} else nested
    return out


def load_split(folder: Path, model: MultimodalModel) -> Split:
    """The split graphs :func:`export_split` wrote into ``folder`` for this model."""
    import onnx

    enc = onnx.load_model(str(folder / "encoders.onnx"), load_external_data=False)
    features = [f"{m}.features" for m in model.modalities]
    return Split(
        folder / "encoders.onnx",
        folder / "fusion.onnx",
        [i.name for i in enc.graph.input],
        features,
        0.0,
    )


def split_run(run_dir: Path, folder: Path) -> Split | None:
    """:func:`export_split` of a trained run (what ``fusiondx serve`` builds once for its workers)."""
    from fusiondx.data.preprocessors import make_preprocessor
    from fusiondx.engine.rundir import RunDir

    run = RunDir(run_dir)
    cfg, model, state = run.load()
    shapes = {}
    for m in cfg.modalities:
        p = make_preprocessor(m, folder)
        p.load_state(state["preprocessors"][m.name])
        shapes[m.name] = p.shapes()
    every = [t["name"] for t in state["tasks"]]
    decoding = decoding_tasks(model, every)
    tasks = [t for t in every if t not in decoding]
    if not tasks:
        return None
    return export_split(model, tasks, example_inputs(shapes), folder, posthoc=run.posthoc())

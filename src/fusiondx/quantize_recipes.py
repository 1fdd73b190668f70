"""How ``fusiondx export --int8`` quantises: recipes tried in order, the first within tolerance kept.

Measured on the built-in cohort (docs/deployment_edge_notes.md): quantising every convolution
and matrix product lost 0.006-0.012 test AUROC, and nearly all of it came from the first layer
of each encoder, the one that reads the raw model input. An 8-bit activation range over a whole
image or ECG record (MinMax over 256 training cases) leaves a faint opacity or a small ST shift a
step or two of the grid; those layers hold a few hundred weights, so keeping them in float costs
nothing in size. Later layers see normalised, rectified features and quantise well.

Each :class:`Recipe` says which weight-carrying operators stay in float and how activation
ranges are calibrated; :func:`float_nodes` finds those operators in the (pre-processed) ONNX
graph by position, not by name, so any exported FusionDx model works.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

QUANTIZED_OPS = ("Conv", "MatMul", "Gemm")


@dataclass(frozen=True)
class Recipe:
    """One way to quantise.

    Args:
        name: what ``int8.json`` and ``--int8-recipe`` call it.
        keep_inputs_float: the weight operators that read a model input (each encoder's first
            convolution or linear layer) stay in float.
        keep_last: this many of the last weight operators (the fusion's output and the task
            heads) stay in float too.
        calibration: activation ranges from the ``minmax`` of the calibration cases, or the
            ``percentile`` (99.999th) of their histogram, which ignores rare outliers.
        per_channel: one weight scale per output channel (rather than per tensor).
    """

    name: str
    keep_inputs_float: bool = True
    keep_last: int = 0
    calibration: str = "minmax"
    per_channel: bool = True

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "keep_inputs_float": self.keep_inputs_float,
            "keep_last": self.keep_last,
            "calibration": self.calibration,
            "per_channel": self.per_channel,
        }


# Tried in this order; the first whose metric drop is within the tolerance is kept. (Percentile
# calibration is selectable but not tried by default: it moved the drop less than keeping the
# first layers in float, and ONNX Runtime's histogram collector fails on some small graphs.)
RECIPES: tuple[Recipe, ...] = (
    Recipe("inputs-float"),
    Recipe("inputs-and-heads-float", keep_last=2),
)
ALL_OPS = Recipe("all-ops", keep_inputs_float=False)  # every weight operator: the smallest file
PERCENTILE = Recipe("inputs-float-percentile", calibration="percentile")
BY_NAME = {r.name: r for r in (*RECIPES, PERCENTILE, ALL_OPS)}


def recipes(names: list[str] | tuple[str, ...] | None) -> tuple[Recipe, ...]:
    """The recipes called ``names`` (all of :data:`RECIPES` for None); a ValueError names an
    unknown one and the known ones."""
    if names is None:
        return RECIPES
    unknown = [n for n in names if n not in BY_NAME]
    if unknown or not names:
        raise ValueError(
            f"unknown int8 recipe '{unknown[0] if unknown else ''}'; recipes: {', '.join(BY_NAME)}"
        )
    return tuple(BY_NAME[n] for n in names)


def float_nodes(model_path: Path, recipe: Recipe) -> list[str]:
    """Names of the weight operators of ``model_path`` that ``recipe`` keeps in float."""
    import onnx

    graph = onnx.load_model(str(model_path), load_external_data=False).graph
    inputs = {i.name for i in graph.input}
    weighted = [n for n in graph.node if n.op_type in QUANTIZED_OPS]
    keep: list[str] = []
    if recipe.keep_inputs_float:
        keep += [n.name for n in weighted if n.input and n.input[0] in inputs]
    if recipe.keep_last:
        keep += [n.name for n in weighted[-recipe.keep_last :] if n.name not in keep]
    return keep


def quantize_options(recipe: Recipe, model_path: Path) -> dict[str, Any]:
    """Keyword arguments of :func:`onnxruntime.quantization.quantize_static` for ``recipe``."""
    from onnxruntime.quantization import CalibrationMethod

    method = {
        "minmax": CalibrationMethod.MinMax,
        "percentile": CalibrationMethod.Percentile,
        "entropy": CalibrationMethod.Entropy,
    }[recipe.calibration]
    return {
        "per_channel": recipe.per_channel,
        "calibrate_method": method,
        "nodes_to_exclude": float_nodes(model_path, recipe),
    }

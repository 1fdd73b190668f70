"""int8 export: static QDQ quantisation, judged on the test split, refused when the metric drops."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from fusiondx.cli import app  # noqa: E402
from fusiondx.config import Config  # noqa: E402
from fusiondx.data.store import prepare  # noqa: E402
from fusiondx.engine.run import fit  # noqa: E402
from fusiondx.engine.rundir import RunDir  # noqa: E402
from fusiondx.errors import RunError  # noqa: E402
from fusiondx.export import export_run, flatten  # noqa: E402
from fusiondx.quantize import quantize_run  # noqa: E402
from fusiondx.quantize_recipes import RECIPES  # noqa: E402


@pytest.fixture(scope="module")
def exported(quick_base: dict[str, Any], cohort_dir: Path, tmp_path_factory: Any) -> Path:
    """A run trained a few epochs (so its logits mean something) and exported to float ONNX."""
    raw = copy.deepcopy(quick_base)
    raw["data"]["manifest"] = str(cohort_dir / "manifest.csv")
    raw["output_dir"] = str(tmp_path_factory.mktemp("int8") / "runs")
    raw["train"]["epochs"] = 4
    run_dir = fit(Config.model_validate(raw)).run_dir
    export_run(run_dir, progress=False)
    return Path(run_dir)


def _copy(run_dir: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "run"
    shutil.copytree(run_dir, dst)
    return dst


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x.astype(np.float64)))


def test_int8_model_is_kept_answers_like_the_float_one_and_keeps_the_calibration(
    exported, tmp_path
):
    run_dir = _copy(exported, tmp_path)
    result = quantize_run(run_dir, tolerance=0.05, progress=False)
    run = RunDir(run_dir)
    assert result.path == run.int8_onnx_file and result.path.is_file()
    report = json.loads(run.int8_file.read_text())
    assert report["kept"] is True and report["int8_bytes"] < report["float_bytes"]
    assert report["float_ms_per_case"] > 0 and report["int8_ms_per_case"] > 0

    proto = onnx.load_model(str(result.path))
    ops = {n.op_type for n in proto.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert any(i.data_type == onnx.TensorProto.INT8 for i in proto.graph.initializer)
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["fusiondx.posthoc"]) == run.posthoc()

    cfg, _, _ = run.load()
    store = prepare(cfg).store
    store.split = run.splits(store.ids)
    names = [i.name for i in ort.InferenceSession(str(run.onnx_file)).get_inputs()]

    def probs(path: Path, idx: np.ndarray) -> np.ndarray:
        batch = store.batch(idx)
        _, tensors = flatten(batch["inputs"])
        feeds = {n: t.numpy() for n, t in zip(names, [*tensors, batch["mask"]], strict=True)}
        return _sigmoid(ort.InferenceSession(str(path)).run(None, feeds)[0][:, 0])

    # Training cases (the calibration saw them; the tolerance check did not): the int8
    # probabilities follow the float ones case by case. (A model trained 4 epochs has a low
    # temperature that magnifies int8's rounding, hence the loose bound on the absolute gap.)
    train = store.indices("train")
    p_float, p_int8 = probs(run.onnx_file, train), probs(result.path, train)
    assert np.abs(p_float - p_int8).mean() < 0.06 and np.abs(p_float - p_int8).max() < 0.2
    assert np.corrcoef(p_float, p_int8)[0, 1] > 0.95

    # int8.json's AUROC is the int8 model's AUROC on the test split.
    test = store.indices("test")
    y = store.targets["diagnosis"][test]
    task = report["tasks"]["diagnosis"]
    assert task["metric"] == "auroc"
    assert task["int8"] == pytest.approx(roc_auc_score(y, probs(result.path, test)), abs=1e-4)
    assert task["float"] == pytest.approx(roc_auc_score(y, probs(run.onnx_file, test)), abs=1e-4)
    assert task["drop"] == pytest.approx(task["float"] - task["int8"])


def test_int8_model_is_refused_and_deleted_when_the_drop_exceeds_the_tolerance(exported, tmp_path):
    run_dir = _copy(exported, tmp_path)
    run = RunDir(run_dir)
    with pytest.raises(RunError, match="was not kept") as err:
        quantize_run(run_dir, tolerance=-1, progress=False)  # no model can meet it
    said = str(err.value)
    assert "auroc" in said and "tolerance -1" in said and "--tolerance" in said
    assert not run.int8_onnx_file.exists()
    report = json.loads(run.int8_file.read_text())
    assert report["kept"] is False and report["refused"]
    # Every recipe was tried, in order, before refusing; the message names them.
    tried = [a["recipe"]["name"] for a in report["attempts"]]
    assert tried == [r.name for r in RECIPES] and "recipes tried: inputs-float" in said


def _weight_producers(path: Path) -> dict[str, str]:
    """Weight operator name -> op type producing its weight input (DequantizeLinear: int8)."""
    graph = onnx.load_model(str(path)).graph
    made = {o: n.op_type for n in graph.node for o in n.output}
    return {
        n.name: made.get(n.input[1], "initializer")
        for n in graph.node
        if n.op_type in ("Conv", "Gemm", "MatMul")
    }


def test_the_recipe_keeps_the_layers_reading_the_inputs_float_and_is_named(exported, tmp_path):
    run_dir = _copy(exported, tmp_path)
    result = quantize_run(run_dir, tolerance=0.05, progress=False, recipe="inputs-float")
    report = result.report
    assert report["recipe"] == "inputs-float" and len(report["attempts"]) == 1
    kept = report["attempts"][0]["float_nodes"]
    producers = _weight_producers(result.path)
    inputs = {i.name for i in onnx.load_model(str(result.path)).graph.input}
    graph = onnx.load_model(str(result.path)).graph
    readers = [n.name for n in graph.node if n.op_type in ("Conv", "Gemm") and n.input[0] in inputs]
    # The image and the signal encoders' first convolutions read the model inputs, in float.
    assert len(kept) >= 2 and set(kept) == set(readers)
    assert all(producers[k] != "DequantizeLinear" for k in kept)
    assert sum(p == "DequantizeLinear" for p in producers.values()) >= 5  # the rest is int8
    meta = {p.key: p.value for p in onnx.load_model(str(result.path)).metadata_props}
    assert json.loads(meta["fusiondx.int8"])["recipe"]["name"] == "inputs-float"

    # all-ops quantises those too (the file is about as large: a first layer holds a few
    # hundred weights, and quantising its input adds a Q/DQ pair).
    everything = quantize_run(
        run_dir, tolerance=1.0, progress=False, recipe="all-ops", overwrite=True
    )
    assert everything.report["attempts"][0]["float_nodes"] == []
    assert all(p == "DequantizeLinear" for p in _weight_producers(everything.path).values())
    assert abs(everything.report["int8_bytes"] - report["int8_bytes"]) < 0.05 * report["int8_bytes"]

    with pytest.raises(RunError, match="unknown int8 recipe 'nope'") as err:
        quantize_run(run_dir, progress=False, recipe="nope", overwrite=True)
    assert "inputs-float" in str(err.value)


def test_int8_needs_an_exported_model(exported, tmp_path):
    run_dir = _copy(exported, tmp_path)
    RunDir(run_dir).onnx_file.unlink()
    with pytest.raises(RunError, match="no ONNX model") as err:
        quantize_run(run_dir, progress=False)
    assert "fusiondx export" in str(err.value)


def test_export_int8_command_prints_size_latency_and_metrics(exported, tmp_path):
    run_dir = _copy(exported, tmp_path)
    result = CliRunner().invoke(app, ["export", str(run_dir), "--int8", "--tolerance", "0.05"])
    assert result.exit_code == 0, result.output
    said = "".join(result.output.split())  # rich wraps long lines, paths too
    assert "model.int8.onnx" in said and "mspercase" in said and "testauroc" in said
    assert RunDir(run_dir).int8_onnx_file.is_file()
    refused = CliRunner().invoke(app, ["export", str(run_dir), "--int8", "--tolerance", "-1"])
    assert refused.exit_code == 2 and "notkept" in "".join(refused.output.split())
    assert not RunDir(run_dir).int8_onnx_file.exists()

"""ONNX export: the exported model answers like PyTorch on cases it was not checked on."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

import onnxruntime as ort  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from fusiondx.cli import app  # noqa: E402
from fusiondx.config import Config  # noqa: E402
from fusiondx.data.store import prepare  # noqa: E402
from fusiondx.engine.run import fit, predict  # noqa: E402
from fusiondx.engine.rundir import RunDir, load_run  # noqa: E402
from fusiondx.errors import RunError  # noqa: E402
from fusiondx.export import export_onnx, export_run, flatten  # noqa: E402
from fusiondx.models.build import build_model  # noqa: E402


@pytest.mark.parametrize("fusion", ["concat", "multimodal_transformer"])
def test_exported_run_matches_pytorch_on_other_cases(quick_config, fusion):
    quick_config["fusion"]["name"] = fusion
    quick_config["train"]["epochs"] = 1
    run_dir = fit(Config.model_validate(quick_config)).run_dir
    result = export_run(run_dir, progress=False)
    assert result.path == run_dir / "model.onnx" and result.path.is_file()
    assert result.max_abs_diff < 1e-4
    # Weights live inside model.onnx (the calibration metadata re-saves it): no stale side file.
    assert not (run_dir / "model.onnx.data").exists()

    # Three training cases (not the ones checked at export), one with a modality hidden:
    # the batch axis is dynamic and the mask is honoured.
    cfg, model, _ = load_run(run_dir)
    store = prepare(cfg).store
    batch = store.batch(store.indices("train")[:3])
    batch["mask"][0, 0] = False
    _, tensors = flatten(batch["inputs"])
    feeds = dict(zip(result.input_names, [*tensors, batch["mask"]], strict=True))
    got = ort.InferenceSession(str(result.path)).run(
        None, {k: v.numpy() for k, v in feeds.items()}
    )[0]
    with torch.no_grad():
        logits = model.predict(batch["inputs"], batch["mask"])["diagnosis"].numpy()
    # The output is the calibrated logit (posthoc.json's temperature baked in).
    temperature = RunDir(run_dir).posthoc()["tasks"]["diagnosis"]["calibration"]["temperature"]
    np.testing.assert_allclose(got, logits / temperature[0], atol=1e-4, rtol=1e-4)


def test_onnx_probabilities_equal_predict(quick_config, tmp_path):
    """sigmoid of the exported output is `predict`'s calibrated probability, case by case, and
    the stored threshold and conformal quantiles travel in the model's metadata."""
    import json

    import onnx
    import pandas as pd

    quick_config["train"]["epochs"] = 1
    run_dir = fit(Config.model_validate(quick_config)).run_dir
    result = export_run(run_dir, progress=False)
    manifest = Path(quick_config["data"]["manifest"])
    table = predict(run_dir, manifest, tmp_path / "p.csv", progress=False)
    cfg, _, _ = load_run(run_dir)
    store = prepare(cfg).store
    idx = np.arange(12)
    batch = store.batch(idx)
    _, tensors = flatten(batch["inputs"])
    feeds = dict(zip(result.input_names, [*tensors, batch["mask"]], strict=True))
    logits = ort.InferenceSession(str(result.path)).run(
        None, {k: v.numpy() for k, v in feeds.items()}
    )[0][:, 0]
    probs = 1 / (1 + np.exp(-logits.astype(np.float64)))
    by_id = table.set_index("case_id")["diagnosis_prob_disease"]
    np.testing.assert_allclose(probs, by_id.loc[store.ids[idx]].to_numpy(), atol=1e-5)
    meta = {p.key: p.value for p in onnx.load_model(str(result.path)).metadata_props}
    stored = json.loads(meta["fusiondx.posthoc"])
    assert stored == json.loads(RunDir(run_dir).posthoc_file.read_text())
    assert isinstance(pd.read_csv(tmp_path / "p.csv")["diagnosis_set"][0], str)


def test_export_command_says_what_it_wrote(quick_config, tmp_path):
    quick_config["train"]["epochs"] = 1
    run_dir = fit(Config.model_validate(quick_config)).run_dir
    out = tmp_path / "exported" / "demo.onnx"
    result = CliRunner().invoke(app, ["export", str(run_dir), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.is_file()
    said = result.output.replace("\n", "")  # rich wraps long lines
    assert "demo.onnx" in said and "mask" in said and "matches PyTorch" in said


def test_export_refuses_a_text_generating_head(quick_config, tmp_path):
    raw = copy.deepcopy(quick_config)
    raw["tasks"] = [{"name": "findings", "head": "generation", "label": "findings_text"}]
    cfg = Config.model_validate(raw)
    prepared = prepare(cfg)
    model = build_model(cfg, prepared.specs, prepared.tasks, None)
    batch = prepared.store.batch(np.arange(4))
    with pytest.raises(RunError, match="generate text"):
        export_onnx(model, ["findings"], batch, Path(tmp_path / "m.onnx"))
    assert not (tmp_path / "m.onnx").exists()

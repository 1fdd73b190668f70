"""`fusiondx pretrain`, fine-tuning from its encoders, and `fusiondx retrieve`, end to end."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch
import yaml
from typer.testing import CliRunner

from fusiondx.cli import app
from fusiondx.config import load_config
from fusiondx.engine.encoders_file import load_encoders
from fusiondx.engine.pretrain import pretrain
from fusiondx.engine.retrieve import retrieve
from fusiondx.engine.run import fit

runner = CliRunner()
MODALITIES = ["cxr", "report", "labs"]


def _config(quick: dict[str, Any], manifest: Path, name: str) -> dict[str, Any]:
    cfg = copy.deepcopy(quick)
    cfg["name"] = name
    cfg["data"]["root"] = str(Path(quick["data"]["manifest"]).parent)
    cfg["data"]["manifest"] = str(manifest)
    cfg["modalities"] = [m for m in cfg["modalities"] if m["name"] in MODALITIES]
    cfg["train"]["epochs"] = 2
    cfg["pretrain"] = {
        "objectives": [{"name": "contrastive", "options": {"dim": 16}}, {"name": "reconstruction"}]
    }
    return cfg


def _write(cfg: dict[str, Any], path: Path) -> Path:
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="module")
def pretrained(
    cohort_dir: Path, quick_base: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """A pretraining run on the cohort with 30 training labels blanked; the labelled manifest."""
    tmp_path = tmp_path_factory.mktemp("pretrain")
    quick_config = copy.deepcopy(quick_base)
    quick_config["data"]["manifest"] = str(cohort_dir / "manifest.csv")
    quick_config["output_dir"] = str(tmp_path / "runs")
    cohort = Path(quick_config["data"]["manifest"])
    df = pd.read_csv(cohort)
    labelled = cohort.parent / "manifest.csv"
    unlabelled_ids = df["case_id"].iloc[::5].head(30)
    with_blanks = df.copy()
    with_blanks.loc[with_blanks["case_id"].isin(unlabelled_ids), "label"] = ""
    every = tmp_path / "every_case.csv"
    with_blanks.to_csv(every, index=False)
    only_labelled = tmp_path / "labelled.csv"
    df[~df["case_id"].isin(unlabelled_ids)].to_csv(only_labelled, index=False)
    cfg = _config(quick_config, every, "pre")
    result = pretrain(load_config(_write(cfg, tmp_path / "pre.yaml")))
    return {
        "result": result,
        "quick": quick_config,
        "labelled": only_labelled,
        "unlabelled": set(unlabelled_ids),
        "tmp": tmp_path,
        "cohort": labelled,
    }


def test_pretrain_writes_safe_encoders_and_retrieval(pretrained: dict[str, Any]) -> None:
    run = pretrained["result"].run_dir
    enc = load_encoders(run / "encoders.pt")
    assert sorted(enc.modalities) == sorted(MODALITIES)
    assert [o["name"] for o in enc.objectives] == ["contrastive", "reconstruction"]
    # unlabelled cases are trained on; the file holds only what weights_only loads
    assert pretrained["unlabelled"] <= set(enc.trained_on)
    torch.load(run / "encoders.pt", weights_only=True)
    retrieval = pretrained["result"].metrics["retrieval"]
    assert set(retrieval) == {f"{a}->{b}" for a in MODALITIES for b in MODALITIES if a != b}
    r = retrieval["report->cxr"]["recall@10"]
    assert 0 <= r["low"] <= r["value"] <= r["high"] <= 1 and 0 < r["chance"] < 1
    assert (run / "retrieval.json").is_file() and (run / "logs" / "metrics.csv").is_file()


def test_split_of_labelled_cases_is_fits_split(pretrained: dict[str, Any]) -> None:
    saved = pd.read_csv(pretrained["result"].run_dir / "splits.csv").set_index("case_id")
    assert (saved.loc[sorted(pretrained["unlabelled"]), "split"] == "train").all()
    from fusiondx.data.labelling import label_cases

    cfg = _config(pretrained["quick"], pretrained["labelled"], "ft")
    lab = label_cases(load_config(_write(cfg, pretrained["tmp"] / "ft.yaml")))
    assert (saved.loc[lab.ids.tolist(), "split"].to_numpy() == lab.split).all()


def test_fit_from_frozen_pretrained_encoder_keeps_its_weights(pretrained: dict[str, Any]) -> None:
    cfg = _config(pretrained["quick"], pretrained["labelled"], "ft")
    enc_file = pretrained["result"].encoders_file
    for m in cfg["modalities"]:
        m.setdefault("encoder", {})["init"] = str(enc_file)
    cfg["modalities"][0]["encoder"]["freeze"] = True  # cxr
    result = fit(load_config(_write(cfg, pretrained["tmp"] / "ft.yaml")))
    assert result.metrics["frozen_encoders"] == ["cxr"]
    assert set(result.metrics["pretrained"]) == set(MODALITIES)
    state = torch.load(result.run_dir / "model.pt", weights_only=True)
    before = load_encoders(enc_file)
    for k, v in before.encoder_state("cxr").items():
        assert torch.equal(state[f"encoders.cxr.{k}"], v), k  # frozen: unchanged, stats included
    changed = [
        k
        for k, v in before.encoder_state("labs").items()
        if not torch.equal(state[f"encoders.labs.{k}"], v)
    ]
    assert changed  # fine-tuned
    # the report was preprocessed with the pretraining's vocabulary
    pre = result.run_dir / "preprocessing.json"
    import json

    saved = json.loads(pre.read_text())["preprocessors"]["report"]
    assert saved == before.modalities["report"]["preprocessor"]


def test_fit_refuses_other_options_damaged_file_and_seen_test_cases(
    pretrained: dict[str, Any],
) -> None:
    tmp = pretrained["tmp"]
    enc_file = pretrained["result"].encoders_file
    cfg = _config(pretrained["quick"], pretrained["labelled"], "bad")
    cfg["modalities"][2]["encoder"] = {"init": str(enc_file), "options": {"hidden_dim": 8}}
    out = runner.invoke(app, ["fit", str(_write(cfg, tmp / "bad.yaml"))])
    assert out.exit_code == 2 and "pretrained with" in out.output and "Traceback" not in out.output
    damaged = tmp / "damaged.pt"
    damaged.write_bytes(enc_file.read_bytes()[:500])
    cfg["modalities"][2]["encoder"] = {"init": str(damaged)}
    out = runner.invoke(app, ["fit", str(_write(cfg, tmp / "bad.yaml"))])
    assert out.exit_code == 2 and "not an encoders file" in out.output
    cfg["modalities"][2]["encoder"] = {"init": str(enc_file)}
    cfg["seed"] = 5  # another split: some test cases were pretrained on
    out = runner.invoke(app, ["fit", str(_write(cfg, tmp / "bad.yaml"))])
    assert out.exit_code == 2 and "pretraining set" in out.output


def test_retrieve_by_case_text_and_errors(pretrained: dict[str, Any]) -> None:
    run = pretrained["result"].run_dir
    saved = pd.read_csv(run / "splits.csv")
    cases = pd.read_csv(pretrained["cohort"]).set_index("case_id")
    test = saved.loc[saved["split"] == "test", "case_id"]
    both = cases.loc[test, ["report", "image"]].notna().all(axis=1)
    test_case, lacking = both[both].index[0], both[~both].index[0]
    found = retrieve(run, "report", "cxr", test_case, k=200)
    assert found["partner"].sum() == 1  # its own image is somewhere among the test cases
    assert found["similarity"].is_monotonic_decreasing
    text = retrieve(run, "report", "labs", "Impression: normal examination.", k=3)
    assert len(text) == 3 and not text["partner"].any()
    out = runner.invoke(
        app, ["retrieve", str(run), "--from", "ecg", "--to", "cxr", "--query", test_case]
    )
    assert out.exit_code == 2 and "not a modality of the run" in out.output
    out = runner.invoke(
        app, ["retrieve", str(run), "--from", "labs", "--to", "cxr", "--query", "nobody"]
    )
    assert out.exit_code == 2 and "case id" in out.output
    out = runner.invoke(
        app, ["retrieve", str(run), "--from", "report", "--to", "cxr", "--query", lacking]
    )
    no_input = not pd.notna(cases.loc[lacking, "report"])
    assert out.exit_code == (2 if no_input else 0), out.output


def test_unknown_objective_or_option_fails_before_any_folder_or_data(
    quick_config: dict[str, Any], tmp_path: Path
) -> None:
    cfg = _config(quick_config, Path(quick_config["data"]["manifest"]), "bad_pre")
    for objectives, words in (
        ([{"name": "contrastiv"}], "Did you mean 'contrastive'"),
        ([{"name": "reconstruction", "options": {"wieght": 1}}], "no option 'wieght'"),
        ([], "needs at least one objective"),
    ):
        cfg["pretrain"] = {"objectives": objectives}
        out = runner.invoke(app, ["pretrain", str(_write(cfg, tmp_path / "bad.yaml"))])
        assert out.exit_code == 2 and words in out.output, out.output
        assert not (Path(cfg["output_dir"]) / "bad_pre").exists()

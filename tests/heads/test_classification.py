"""Classification head: losses and metrics on cases with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, roc_auc_score

from fusiondx.evaluation.metrics import classification_metrics
from fusiondx.registry import create_head


def test_perfect_binary_predictions_score_one() -> None:
    y = torch.tensor([0, 1, 1, 0, 1.0])
    p = torch.tensor([[0.1], [0.9], [0.8], [0.2], [0.7]])
    m = classification_metrics(p, y, "binary", 2)
    for k in (
        "accuracy",
        "balanced_accuracy",
        "f1",
        "auroc",
        "auprc",
        "sensitivity",
        "specificity",
    ):
        assert m[k] == pytest.approx(1.0), k
    assert m["confusion_matrix"] == [[2, 0], [0, 3]]


def test_binary_auroc_and_auprc_match_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    p = np.clip(y * 0.3 + rng.random(200) * 0.7, 0, 1)
    m = classification_metrics(torch.tensor(p)[:, None], torch.tensor(y), "binary", 2)
    assert m["auroc"] == pytest.approx(roc_auc_score(y, p), abs=1e-5)
    assert m["auprc"] == pytest.approx(average_precision_score(y, p), abs=1e-5)


def test_auroc_is_nan_not_a_number_when_only_one_class_is_present() -> None:
    m = classification_metrics(torch.tensor([[0.2], [0.9]]), torch.tensor([1, 1]), "binary", 2)
    assert np.isnan(m["auroc"])


def test_multiclass_and_multilabel_metrics() -> None:
    y = torch.tensor([0, 1, 2, 2])
    p = torch.eye(3)[y] * 0.8 + 0.2 / 3
    m = classification_metrics(p, y, "multiclass", 3)
    assert m["accuracy"] == 1.0 and m["auroc"] == pytest.approx(1.0)
    assert np.array(m["confusion_matrix"]).trace() == 4
    yl = torch.tensor([[1, 0], [0, 1], [1, 1], [0, 0]])
    ml = classification_metrics(yl.float() * 0.9 + 0.05, yl, "multilabel", 2)
    assert ml["f1"] == pytest.approx(1.0) and ml["auroc"] == pytest.approx(1.0)
    assert np.array(ml["confusion_matrix"]).shape == (2, 2, 2)


@pytest.mark.parametrize("task,k", [("binary", 2), ("multiclass", 4), ("multilabel", 3)])
def test_loss_falls_when_the_head_learns(task: str, k: int) -> None:
    torch.manual_seed(0)
    head = create_head("classification", in_dim=8, num_classes=k, task=task)
    x = torch.randn(64, 8)
    if task == "binary":
        y = (x[:, 0] > 0).float()
    elif task == "multiclass":
        y = x[:, :k].argmax(1)
    else:
        y = (x[:, :k] > 0).float()
    opt = torch.optim.Adam(head.parameters(), lr=0.05)
    first = head.loss(head(x), y).item()
    for _ in range(100):
        opt.zero_grad()
        loss = head.loss(head(x), y)
        loss.backward()
        opt.step()
    assert loss.item() < first * 0.5


def test_class_weights_weigh_the_loss() -> None:
    torch.manual_seed(0)
    plain = create_head("classification", in_dim=4, num_classes=2, task="binary")
    weighted = create_head(
        "classification", in_dim=4, num_classes=2, task="binary", class_weights=[1.0, 5.0]
    )
    weighted.load_state_dict(plain.state_dict())
    x, y = torch.randn(10, 4), torch.ones(10)
    assert weighted.loss(weighted(x), y).item() == pytest.approx(
        5 * plain.loss(plain(x), y).item(), rel=1e-5
    )


@pytest.mark.parametrize("task,k", [("binary", 2), ("multiclass", 3), ("multilabel", 3)])
def test_probabilities_round_trip_for_late_fusion(task: str, k: int) -> None:
    head = create_head("classification", in_dim=4, num_classes=k, task=task)
    logits = torch.randn(5, head.num_outputs)
    back = head.to_probs(head.from_probs(head.to_probs(logits)))
    assert torch.allclose(back, head.to_probs(logits), atol=1e-5)


def test_macro_auroc_leaves_out_a_label_without_positives() -> None:
    # Labels 0 and 1 are ranked perfectly; label 2 has no positive case in this split. Counting
    # it as AUROC 0 (torchmetrics' convention) would report 0.67 instead of 1.
    p = torch.tensor([[0.9, 0.2, 0.5], [0.1, 0.8, 0.5], [0.8, 0.3, 0.4], [0.2, 0.7, 0.6]])
    y = torch.tensor([[1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 1, 0]])
    m = classification_metrics(p, y, "multilabel", 3)
    assert m["auroc"] == pytest.approx(1.0) and m["auprc"] == pytest.approx(1.0)
    # Multiclass, class 2 absent from the targets: the same rule.
    pm = torch.tensor([[0.7, 0.2, 0.1], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.3, 0.6, 0.1]])
    m = classification_metrics(pm, torch.tensor([0, 1, 0, 1]), "multiclass", 3)
    assert m["auroc"] == pytest.approx(1.0)

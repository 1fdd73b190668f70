"""The docs tables are generated from the registries and must match them."""

from __future__ import annotations

from pathlib import Path

from fusiondx.catalog import encoders_md, fusions_md, readers_md, references_md

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_docs_tables_are_up_to_date() -> None:
    for name, text in (
        ("encoders.md", encoders_md()),
        ("fusions.md", fusions_md()),
        ("references.md", references_md()),
        ("readers.md", readers_md()),
    ):
        assert (DOCS / name).read_text() == text, (
            f"docs/{name} is stale: run `python -m fusiondx.catalog`"
        )


def test_every_fusion_has_measured_parameters_flops_and_auroc() -> None:
    from fusiondx.catalog import load_measurements
    from fusiondx.registry import list_fusions

    rows = load_measurements(DOCS / "fusion_measurements.json")["entries"]
    missing = [f for f in list_fusions() if f not in rows]
    assert not missing, (
        f"{missing} have no measured columns in docs/fusions.md: see the "
        "measurement commands in fusiondx/catalog.py"
    )
    for name, m in rows.items():
        assert m["n_parameters"] > 0 and m["flops_per_case"] > 0, name
        assert 0.5 < m["auroc"]["mean"] <= 1 and m["auroc"]["low"] <= m["auroc"]["high"], name

"""The docs tables are generated from the registries and must match them."""

from __future__ import annotations

from pathlib import Path

from fusiondx.catalog import encoders_md, fusions_md

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_docs_tables_are_up_to_date() -> None:
    for name, text in (("encoders.md", encoders_md()), ("fusions.md", fusions_md())):
        assert (DOCS / name).read_text() == text, (
            f"docs/{name} is stale: run `python -m fusiondx.catalog`")

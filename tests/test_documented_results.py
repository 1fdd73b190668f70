"""Every result in the README and the docs is the rendering of its committed results file.

The blocks between ``<!-- results:<name> -->`` markers are written by ``bench.documented`` from
``docs/results/*.json``, which ``make results`` (``bench.results``) produces by running each
documented command. This fails when a block was edited by hand or its results file changed
without the docs being rewritten (``python -m bench.documented``).
"""

from __future__ import annotations

import pytest

from bench import documented

DOCS = [d for d in documented.DOCS if documented.BLOCK.search(d.read_text())]


def test_the_readme_and_the_study_docs_carry_generated_results() -> None:
    names = {d.name for d in DOCS}
    assert {"README.md", "study.md", "real-data.md", "tasks.md", "cohort.md"} <= names


@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
def test_every_documented_number_matches_its_results_file(doc) -> None:  # noqa: ANN001
    text = doc.read_text()
    for m in documented.BLOCK.finditer(text):
        name = m.group("name")
        assert name in documented.BLOCKS, f"{doc.name}: no renderer for block '{name}'"
        expected = documented.BLOCKS[name]().strip()
        assert m.group("body").strip() == expected, (
            f"{doc.name}: the '{name}' block differs from its results file; run "
            "`python -m bench.documented` (or `make results` to measure again)"
        )


def test_every_summary_names_the_command_that_produced_it() -> None:
    import json

    for path in sorted(documented.SUMMARIES.glob("*.json")):
        s = json.loads(path.read_text())
        assert s.get("command"), path.name
        if "study" in s and "entries" in s:  # a study: its verdict and its chosen models
            assert s["verdict"]["headline"] and documented.entry(s, s["winner"]) is not None, (
                path.name
            )


def test_the_generation_example_trains_its_image_only_decoder() -> None:
    """The documented findings-generation study (examples/generation.yaml): the image-only
    decoder learned beyond its first epoch and writes other text than the decoder without input
    (an early stop on a flat BLEU once left the two identical, flattering fusion)."""
    s = documented.load("generation")
    image, blind = documented.entry(s, "single_cxr"), documented.entry(s, "single_nocontext")
    assert image is not None and blind is not None
    assert image["flags"] == [], image["flags"]
    metric = s["study"]["primary_metric"]
    assert image["test"][metric]["mean"] != blind["test"][metric]["mean"]

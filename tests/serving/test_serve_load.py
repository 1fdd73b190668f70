"""The load generator of `python -m bench serve`, against the real server on loopback: bounded
by count, every request answered, the numbers it reports consistent."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

pytest.importorskip("uvicorn")
pytest.importorskip("psutil")

from bench.serve import PeakMemory, load, payloads  # noqa: E402


def test_load_generator_is_bounded_and_counts(server: str, cohort_dir: Path) -> None:
    import os

    cases = payloads(
        cohort_dir / "manifest.csv", 4, labs=["age", "sex", "crp", "troponin", "smoker"]
    )
    assert len(cases) == 4
    mem = PeakMemory(os.getpid())
    row = asyncio.run(load(server, cases, concurrency=4, requests=10, seconds=60))
    assert mem.stop() > 10  # MiB: this process holds the model
    assert row["requests"] == 10 and row["ok"] == 10 and row["errors"] == 0, row["first_errors"]
    assert 0 < row["p50_ms"] <= row["p99_ms"] and row["rps"] > 0
    # A field the model does not take is a counted error, not a crash of the generator.
    bad = [(files, {**data, "not_a_lab": "1"}) for files, data in cases]
    row = asyncio.run(load(server, bad, concurrency=2, requests=3, seconds=60))
    assert row["errors"] == 3 and row["ok"] == 0 and "422" in row["first_errors"][0]

"""FusionDx benchmarks: `python -m bench --help`. Results go to BENCHMARKS.md and bench/results/."""

# Imported first so that its OpenMP wait policy is set before any benchmark imports torch.
import fusiondx  # noqa: F401

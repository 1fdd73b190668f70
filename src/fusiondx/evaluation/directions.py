"""Facts about metrics that every task type and the study share (which metrics a task type
reports, and its primary one, are the task type's: :mod:`fusiondx.tasks`)."""

from __future__ import annotations

LOWER_IS_BETTER: frozenset[str] = frozenset({"mae", "rmse", "center_error"})
# Metrics that need the written words (METEOR): NaN in what a head logs on validation (token ids),
# so they can neither stop training nor choose a study's winner; the study's tables have them.
WORDS_ONLY: frozenset[str] = frozenset({"meteor"})

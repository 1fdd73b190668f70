"""What every report section reads: the results with their ranking, display names and colours,
and the HTML snippets (escaped text, a figure, a note) the sections are made of."""

from __future__ import annotations

import html
from typing import Any

from fusiondx.study.plots import KIND_COLORS, PALETTE
from fusiondx.study.report._format import metric_name, ranked


def esc(s: Any) -> str:
    """Any value as HTML-escaped text."""
    return html.escape(str(s))


class Context:
    """The results as the sections read them: entries best first, the winner and the best single
    model (the focus pair), display names and one colour per entry."""

    def __init__(self, results: dict[str, Any]) -> None:
        self.r = results
        self.study = results.get("study") or {}
        self.pm = self.study.get("primary_metric", "auroc")
        self.pname = metric_name(self.pm)
        self.entries = ranked(results)
        # Ids as the results file has them (strings, unless it was written by hand).
        self.by_id: dict[Any, dict[str, Any]] = {e.get("id"): e for e in self.entries}
        self.winner: str | None = results.get("winner") or (
            self.entries[0]["id"] if self.entries else None
        )
        self.best: str | None = results.get("best_single")
        self.label = {i: str(e.get("label", i)) for i, e in self.by_id.items()}
        self.colors: dict[str, str] = {}
        for i in self._focus() + list(self.by_id):
            kind = self.by_id.get(i, {}).get("kind", "")
            c = KIND_COLORS.get(kind, PALETTE[len(self.colors) % len(PALETTE)])
            if c in self.colors.values():
                c = next((p for p in PALETTE if p not in self.colors.values()), c)
            self.colors.setdefault(i, c)

    def _focus(self) -> list[str]:
        c = self.r.get("comparison") or {}
        ids = [c.get("a") or self.winner, c.get("b") or self.best, self.winner, self.best]
        return [i for i in dict.fromkeys(ids) if i]

    def pair(self) -> list[str]:
        return self._focus()[:2]

    def name(self, i: str) -> str:
        tag = " (winner)" if i == self.winner else " (best single)" if i == self.best else ""
        return self.label.get(i, i) + tag

    def order(self, ids: Any) -> list[str]:
        ids = list(ids)
        return [i for i in self._focus() if i in ids] + [i for i in ids if i not in self._focus()]


def figure(uri: str, caption: str = "") -> str:
    """An image (a data URI) with its caption."""
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return f'<figure><img src="{uri}" alt="{esc(caption or "figure")}">{cap}</figure>'


def note(text: str) -> str:
    """A one-line note, e.g. why a section is skipped."""
    return f'<p class="note">{esc(text)}</p>'

"""The ingest report: every light curve and point read is either written or rejected
with a reason, so `written + rejected == read` holds for both."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class IngestReport:
    survey: str
    files_read: int = 0
    light_curves_read: int = 0
    light_curves_written: int = 0
    points_read: int = 0
    points_written: int = 0
    points_rejected: Counter = field(default_factory=Counter)
    light_curves_rejected: Counter = field(default_factory=Counter)
    shards: list[str] = field(default_factory=list)

    def read(self, n_points: int, n_light_curves: int = 1) -> None:
        self.light_curves_read += n_light_curves
        self.points_read += int(n_points)

    def reject_points(self, reason: str, n: int) -> None:
        if n:
            self.points_rejected[reason] += int(n)

    def reject_light_curve(self, reason: str, n_points_left: int) -> None:
        """A whole light curve is dropped; its remaining points are rejected for `reason`."""
        self.light_curves_rejected[reason] += 1
        self.reject_points(reason, n_points_left)

    def written(self, n_points: int, n_light_curves: int = 1) -> None:
        self.light_curves_written += n_light_curves
        self.points_written += int(n_points)

    @property
    def balanced(self) -> bool:
        return (self.points_written + sum(self.points_rejected.values()) == self.points_read
                and self.light_curves_written + sum(self.light_curves_rejected.values())
                == self.light_curves_read)

    def to_dict(self) -> dict:
        return {
            "survey": self.survey,
            "files_read": self.files_read,
            "light_curves_read": self.light_curves_read,
            "light_curves_written": self.light_curves_written,
            "light_curves_rejected": dict(self.light_curves_rejected),
            "points_read": self.points_read,
            "points_written": self.points_written,
            "points_rejected": dict(self.points_rejected),
            "balanced": self.balanced,
            "shards": self.shards,
        }

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

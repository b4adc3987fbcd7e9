"""The ingest report: every light curve and point read is either written or rejected
with a reason, so `written + rejected == read` holds for both (light curves merged into
another one, issue 9 item 6, count on the left as `light_curves_merged`).

Files a reader could not read are listed in `files_rejected` with their reason; what was
read from them before the failure is not counted at all (ingest rolls it back), so the
balance covers exactly the files that were ingested. Label catalogues found beside the light
curves are not light-curve files: they are listed in `files_skipped` (issue 12, item 6),
neither read nor rejected. Raw labels the survey's taxonomy does not know are counted in
`labels_unknown` (raw label -> light curves); those light curves are kept, unlabelled.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from lcfm.dataset_lock import write_text_atomic

#: how many duplicate object_ids report.json lists by name
DUPLICATE_EXAMPLES = 20
#: distinct unknown raw labels counted by name; the others are counted under OTHER_LABELS
UNKNOWN_LABEL_NAMES = 100
OTHER_LABELS = "(other unknown raw labels)"


@dataclass
class IngestReport:
    survey: str
    files_read: int = 0
    light_curves_read: int = 0
    light_curves_written: int = 0
    #: raw light curves combined into another of the same object ("merge" readers)
    light_curves_merged: int = 0
    points_read: int = 0
    points_written: int = 0
    points_rejected: Counter = field(default_factory=Counter)
    light_curves_rejected: Counter = field(default_factory=Counter)
    shards: list[str] = field(default_factory=list)
    #: {"file": path, "reason": one line} per file that could not be read
    files_rejected: list[dict] = field(default_factory=list)
    duplicate_object_ids: int = 0
    duplicate_examples: list[str] = field(default_factory=list)
    #: {"file": path, "reason": why} per file discovery left out (label catalogues)
    files_skipped: list[dict] = field(default_factory=list)
    #: raw label -> light curves whose raw label the taxonomy does not know (kept unlabelled)
    labels_unknown: Counter = field(default_factory=Counter)

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

    def reject_duplicate(self, object_id: str, n_points: int) -> None:
        """A light curve whose object (and segment) was already ingested: not kept twice."""
        self.reject_light_curve("duplicate object_id", n_points)
        self.duplicate_object_ids += 1
        self._example(str(object_id))

    def _example(self, object_id: str) -> None:
        """List a duplicate object_id by name, up to DUPLICATE_EXAMPLES distinct ones."""
        if len(self.duplicate_examples) < DUPLICATE_EXAMPLES \
                and object_id not in self.duplicate_examples:
            self.duplicate_examples.append(object_id)

    def unknown_label(self, raw: str, n_light_curves: int = 1) -> None:
        """A light curve whose raw label the taxonomy does not map: counted, kept unlabelled."""
        key = str(raw)
        if key not in self.labels_unknown and len(self.labels_unknown) >= UNKNOWN_LABEL_NAMES:
            key = OTHER_LABELS
        self.labels_unknown[key] += int(n_light_curves)

    def skip_file(self, path, reason: str) -> None:
        self.files_skipped.append({"file": str(path), "reason": reason})

    def merged(self, n_light_curves: int) -> None:
        self.light_curves_merged += int(n_light_curves)

    def reject_file(self, path, reason: str) -> None:
        self.files_rejected.append({"file": str(path), "reason": reason})

    def written(self, n_points: int, n_light_curves: int = 1) -> None:
        self.light_curves_written += n_light_curves
        self.points_written += int(n_points)

    def absorb(self, other: IngestReport) -> None:
        """Add the counts of `other` (one file's report, once the file read cleanly)."""
        self.files_read += other.files_read
        for name in ("light_curves_read", "light_curves_written", "light_curves_merged",
                     "points_read", "points_written"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.points_rejected.update(other.points_rejected)
        self.light_curves_rejected.update(other.light_curves_rejected)
        self.files_rejected.extend(other.files_rejected)
        self.files_skipped.extend(other.files_skipped)
        for raw, n in other.labels_unknown.items():
            self.unknown_label(raw, n)
        self.duplicate_object_ids += other.duplicate_object_ids
        for object_id in other.duplicate_examples:
            self._example(object_id)

    @property
    def balanced(self) -> bool:
        return (self.points_written + sum(self.points_rejected.values()) == self.points_read
                and self.light_curves_written + self.light_curves_merged
                + sum(self.light_curves_rejected.values()) == self.light_curves_read)

    def to_dict(self) -> dict:
        return {
            "survey": self.survey,
            "files_read": self.files_read,
            "files_rejected": list(self.files_rejected),
            "files_skipped": list(self.files_skipped),
            "light_curves_read": self.light_curves_read,
            "light_curves_written": self.light_curves_written,
            "light_curves_merged": self.light_curves_merged,
            "light_curves_rejected": dict(self.light_curves_rejected),
            "points_read": self.points_read,
            "points_written": self.points_written,
            "points_rejected": dict(self.points_rejected),
            "duplicate_object_ids": {"count": self.duplicate_object_ids,
                                     "examples": list(self.duplicate_examples)},
            "labels_unknown": dict(self.labels_unknown),
            "balanced": self.balanced,
            "shards": self.shards,
        }

    def save(self, path: Path) -> None:
        write_text_atomic(Path(path), json.dumps(self.to_dict(), indent=2) + "\n")

"""Typed errors of lcfm.

Every error a user can cause carries the values involved (file, row, column, name) so the
CLI can print it as one line and exit non-zero without a traceback.
"""

from __future__ import annotations


class LcfmError(Exception):
    """Base class of every error lcfm raises on purpose."""


class SchemaError(LcfmError):
    """A table does not follow the canonical light-curve schema."""

    def __init__(self, problem: str, *, column: str | None = None, row: int | None = None,
                 object_id: str | None = None, source: str | None = None):
        self.problem, self.column, self.row = problem, column, row
        self.object_id, self.source = object_id, source
        where = []
        if source:
            where.append(str(source))
        if row is not None:
            where.append(f"row {row}" + (f" (object_id={object_id!r})" if object_id else ""))
        if column:
            where.append(f"column {column!r}")
        super().__init__(f"{', '.join(where)}: {problem}" if where else problem)


class InputFileError(LcfmError):
    """A native survey file is missing, unreadable or malformed."""

    def __init__(self, path, problem: str, *, line: int | None = None):
        problem = "; ".join(part.strip(" -") for part in str(problem).splitlines() if part.strip())
        self.path, self.problem, self.line = str(path), problem, line
        at = f"{self.path}" + (f", line {line}" if line is not None else "")
        super().__init__(f"{at}: {problem}")


class PluginNotFoundError(LcfmError, KeyError):
    """No installed plugin has the requested name."""

    def __init__(self, kind: str, name: str, installed: list[str]):
        self.kind, self.name, self.installed = kind, name, installed
        listing = ", ".join(sorted(installed)) or "none"
        LcfmError.__init__(self, f"unknown {kind} {name!r}; installed: {listing}")

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return self.args[0]


class ConfigError(LcfmError, ValueError):
    """A configuration or option value is invalid."""


class DataError(LcfmError):
    """A dataset folder is missing, empty or inconsistent."""


class ModelFolderError(DataError):
    """A model folder is missing, incomplete (what a kill during a save leaves), corrupt, or
    not the kind of model a command needs (a pretrained encoder given to `predict`)."""

    def __init__(self, path, problem: str):
        problem = "; ".join(part.strip() for part in str(problem).splitlines() if part.strip())
        self.path, self.problem = str(path), problem
        super().__init__(f"{self.path}: {problem}")


class RunMismatchError(ConfigError):
    """`--resume` asked to continue a run that differs from the one in the checkpoint: the
    two would be mixed into one model (issue 9, "checked runs"). `mismatches` holds
    (field, value in the checkpoint, value asked for) for every field that differs."""

    def __init__(self, checkpoint, mismatches: list[tuple[str, object, object]]):
        self.checkpoint, self.mismatches = str(checkpoint), list(mismatches)
        self.field = self.mismatches[0][0]
        differences = "; ".join(f"{field} is {stored!r} in the checkpoint but {asked!r} in "
                                "this run" for field, stored, asked in self.mismatches)
        super().__init__(f"{self.checkpoint}: cannot resume: {differences} (repeat the "
                         "original values, or use a new --output)")

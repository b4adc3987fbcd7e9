"""The weight-loading report of transformers, in one informative line.

Putting a new classification head on a pretrained encoder is what `lcfm finetune` is for,
yet transformers reports it as a table of MISSING and UNEXPECTED keys with advice meant for
other situations. `quiet_load_reports` installs a logging filter that rewrites that record
into one line: how many checkpoint tensors were loaded, how many head tensors were newly
initialised (and which modules), which checkpoint tensors were left unused (the pretraining
head) and any tensors re-initialised because their shape changed.
"""

from __future__ import annotations

import itertools
import logging
import re
from pathlib import Path

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_BRACES = re.compile(r"\{([^{}]*)\}")
_LOGGERS = ("transformers.modeling_utils", "transformers.utils.loading_report")
_WORDS = {
    "MISSING": "newly initialised",
    "UNEXPECTED": "in the checkpoint but unused",
    "MISMATCH": "re-initialised for a new shape",
}


def expand(key: str) -> list[str]:
    """The tensor names one report row stands for: `classifier.{0, 3}.weight` ->
    classifier.0.weight, classifier.3.weight."""
    groups = [[p.strip() for p in g.split(",")] for g in _BRACES.findall(key)]
    template = _BRACES.sub("{}", key)
    return [template.format(*combo) for combo in itertools.product(*groups)] if groups \
        else [key]


def parse_report(text: str) -> tuple[str, str, dict[str, list[str]]]:
    """(model class, source, status -> tensor names) of a transformers load report."""
    text = _ANSI.sub("", text)
    head = text.splitlines()[0] if text else ""
    model, _, source = head.partition(" LOAD REPORT")
    source = source.partition("from:")[2].strip()
    rows: dict[str, list[str]] = {}
    for line in text.splitlines()[1:]:
        cells = [c.strip() for c in line.split("|")]
        if len(cells) < 2 or not cells[0] or cells[1] in ("", "Status") \
                or set(cells[0]) <= {"-", "+"}:
            continue
        rows.setdefault(cells[1].split()[0], []).extend(expand(cells[0]))
    return model.strip(), source, rows


def _checkpoint_tensors(source: str) -> int | None:
    """Tensors in the checkpoint folder's safetensors files (header only), or None."""
    folder = Path(source)
    files = sorted(folder.glob("*.safetensors")) if folder.is_dir() else []
    if not files:
        return None
    from safetensors import safe_open

    total = 0
    for path in files:
        with safe_open(path, "pt") as fh:
            total += len(list(fh.keys()))
    return total


def _modules(names: list[str]) -> str:
    tops = sorted({n.split(".")[0] for n in names})
    return ", ".join(tops[:4]) + (", ..." if len(tops) > 4 else "")


def one_line(text: str) -> str:
    """The one-line form of a transformers load report."""
    model, source, rows = parse_report(text)
    parts = []
    total = _checkpoint_tensors(source)
    if total is not None:
        unused = len(rows.get("UNEXPECTED", [])) + len(rows.get("MISMATCH", []))
        parts.append(f"{total - unused} tensors loaded from {source}")
    for status, names in rows.items():
        word = _WORDS.get(status, status.lower())
        parts.append(f"{len(names)} {word} ({_modules(names)})")
    new_head = "MISSING" in rows and "classif" in " ".join(rows["MISSING"])
    prefix = f"{model}: new classification head" if new_head else f"{model}"
    return f"{prefix}: " + "; ".join(parts)


class _OneLineReport(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "LOAD REPORT" in message:
            try:
                record.msg, record.args = one_line(message), ()
            except Exception:  # noqa: BLE001 - an unexpected layout keeps the original
                pass
        return True


_FILTER = _OneLineReport()


def quiet_load_reports() -> None:
    """Rewrite transformers' load reports into one line (idempotent)."""
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)

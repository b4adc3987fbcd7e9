"""Progress of long work, on terminals and in logs.

On a terminal, a tqdm bar as usual. When stderr is a file or a pipe (a batch job, `nohup`,
`... 2>&1 | tee run.log`), tqdm would either print nothing (`disable=None`) or one endless
line of carriage returns; instead the same bar is written as whole lines, one at most every
`LOG_INTERVAL_S` seconds and one at the end, so a log shows how far a run got and its rate.
Work that ends within the first interval writes nothing (a one-line error stays one line).
"""

from __future__ import annotations

import sys
from typing import TextIO

from tqdm.auto import tqdm

#: seconds between two progress lines in a log (a terminal bar refreshes as tqdm does)
LOG_INTERVAL_S = 30.0


class _LineWriter:
    """A file for tqdm that turns each refresh (carriage return + bar) into one line."""

    def __init__(self, stream: TextIO):
        self.stream = stream

    def write(self, text: str) -> None:
        line = text.replace("\r", "").strip()
        if line:
            self.stream.write(line + "\n")

    def flush(self) -> None:
        self.stream.flush()


class _LogBar(tqdm):
    """A bar for logs: a new postfix or description waits for the next timed line instead
    of forcing one (training loops set the loss every step)."""

    def set_postfix(self, ordered_dict=None, refresh=True, **kwargs):
        super().set_postfix(ordered_dict, refresh=False, **kwargs)

    def set_description(self, desc=None, refresh=True):
        super().set_description(desc, refresh=False)


def progress_bar(*, total: int, desc: str, unit: str, enabled: bool = True, initial: int = 0,
                 stream: TextIO | None = None, interval: float = LOG_INTERVAL_S) -> tqdm:
    """A tqdm bar on `stream` (stderr): live on a terminal; in a log, whole lines at most
    every `interval` seconds, the first after `interval` seconds."""
    stream = sys.stderr if stream is None else stream
    if not enabled:
        return tqdm(total=total, initial=initial, disable=True)
    if stream.isatty():
        return tqdm(total=total, initial=initial, desc=desc, unit=unit, file=stream)
    return _LogBar(total=total, initial=initial, desc=desc, unit=unit,
                      file=_LineWriter(stream), mininterval=interval, delay=interval,
                   maxinterval=1e9, ascii=True, ncols=100, dynamic_ncols=False)


__all__ = ["LOG_INTERVAL_S", "progress_bar"]

"""Progress on terminals and in logs (lcfm.progress)."""

import io

from lcfm.progress import progress_bar


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _run(stream, enabled=True, total=5, **kw):
    with progress_bar(total=total, desc="pretrain astromer", unit="step", stream=stream,
                      enabled=enabled, **kw) as bar:
        for _ in range(total):
            bar.update(1)
    return stream.getvalue()


def test_a_log_gets_whole_lines_with_the_final_count():
    text = _run(io.StringIO(), interval=0)
    assert "\r" not in text
    lines = text.splitlines()
    assert len(lines) >= 2 and all(line.startswith("pretrain astromer") for line in lines)
    assert "5/5" in lines[-1]


def test_short_work_writes_nothing_to_a_log():
    # the first line comes after one interval: a quick command (or a one-line error) is
    # not preceded by a 0% line
    assert _run(io.StringIO()) == ""


def test_a_terminal_gets_a_live_bar():
    text = _run(_Terminal())
    assert "\r" in text and "5/5" in text


def test_disabled_prints_nothing():
    stream = io.StringIO()
    assert _run(stream, enabled=False) == ""

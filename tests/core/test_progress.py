"""Progress on terminals and in logs (lcfm.progress)."""

import io
import time

from lcfm.progress import progress_bar


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _run(stream, enabled=True, total=5, **kw):
    with progress_bar(total=total, desc="pretrain astromer", unit="step", stream=stream,
                      enabled=enabled, **kw) as bar:
        for step in range(total):
            bar.set_postfix(loss=1.0 / (step + 1))  # as training loops do, every step
            bar.update(1)
    return stream.getvalue()


def test_a_log_gets_whole_lines_with_the_final_count():
    text = _run(io.StringIO(), interval=0)
    assert "\r" not in text
    lines = text.splitlines()
    assert len(lines) >= 2 and all(line.startswith("pretrain astromer") for line in lines)
    assert "5/5" in lines[-1]


def test_a_new_postfix_every_step_does_not_add_lines_to_a_log():
    text = _run(io.StringIO(), interval=3600, total=50)
    assert text == ""  # 50 postfix updates within the first hour: nothing yet
    stream = io.StringIO()
    with progress_bar(total=50, desc="finetune", unit="step", stream=stream,
                      interval=0.1) as bar:
        for step in range(50):
            bar.set_postfix(loss=float(step))
            bar.update(1)
            time.sleep(0.01)  # 0.5 s of work: a handful of 0.1 s intervals, not 50 lines
    lines = stream.getvalue().splitlines()
    assert 1 <= len(lines) <= 15 and "50/50" in lines[-1] and "loss=49" in lines[-1]


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

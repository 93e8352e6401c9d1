import io

import pytest

from comfykit_batch.batch.run.runner import Progress
from comfykit_batch.cli.progress import ProgressDisplay


class Tty(io.StringIO):
    def isatty(self):
        return True


def snapshot():
    p = Progress(total=10, done=3, failed=1, skipped=2)
    p.in_flight = {"gpu1": 2, "gpu2": 1}
    return p


def test_terminal_gets_one_live_line():
    out = Tty()
    d = ProgressDisplay(out)
    d(snapshot())
    d(snapshot())
    d.close()
    text = out.getvalue()
    assert text.count("\r") == 2 and text.endswith("\n") and text.count("\n") == 1
    assert "done 3 failed 1 skipped 2 / 10" in text and "pending 4" in text and "gpu1:2 gpu2:1" in text


class FakeClock:
    """A clock whose zero is arbitrary, as time.monotonic()'s is (e.g. seconds since boot)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("zero", [0.0, 3.0, 1e9])
def test_log_gets_plain_lines_at_an_interval_and_a_final_one(zero):
    out = io.StringIO()
    clock = FakeClock(zero)
    d = ProgressDisplay(out, interval=10, clock=clock)
    d(snapshot())  # the first call always writes, whatever the clock's value
    clock.now += 5
    d(snapshot())  # within the interval: no second line
    clock.now += 6
    d(snapshot())  # past it: a line
    d.close(snapshot())
    lines = out.getvalue().splitlines()
    assert len(lines) == 3 and "\r" not in out.getvalue() and all("jobs/s" in line for line in lines)


def test_progress_rate_uses_its_clock_whatever_its_zero():
    clock = FakeClock(2.0)  # a machine booted two seconds ago
    p = Progress(total=10, clock=clock)
    p.done = 4
    clock.now += 2
    assert p.rate() == 2.0 and p.eta() == 3.0


def test_quiet_prints_nothing():
    out = Tty()
    d = ProgressDisplay(out, quiet=True)
    d(snapshot())
    d.close(snapshot())
    assert out.getvalue() == ""

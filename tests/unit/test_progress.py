import io

from comfykit_batch.batch.progress import ProgressDisplay
from comfykit_batch.batch.runner import Progress


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


def test_log_gets_plain_lines_at_an_interval_and_a_final_one():
    out = io.StringIO()
    d = ProgressDisplay(out, interval=3600)
    d(snapshot())
    d(snapshot())  # within the interval: no second line
    d.close(snapshot())
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and "\r" not in out.getvalue() and all("jobs/s" in line for line in lines)


def test_quiet_prints_nothing():
    out = Tty()
    d = ProgressDisplay(out, quiet=True)
    d(snapshot())
    d.close(snapshot())
    assert out.getvalue() == ""

"""Reports name a remote output folder as given (``s3://bkt/run1``, never ``s3:/bkt/run1``)."""

import pytest

from comfykit_batch.cli import main
from comfykit_batch.errors import UsageError
from comfykit_batch.report.index import load_results


def test_a_remote_folder_is_named_as_given():
    with pytest.raises(UsageError, match=r"^s3://bkt/run1: reports read a local output folder"):
        load_results("s3://bkt/run1")


@pytest.mark.parametrize("command", [["grid", "s3://bkt/run1", "--x", "seed"], ["gallery", "s3://bkt/run1"],
                                     ["export", "s3://bkt/run1", "--format", "csv"]])
def test_report_commands_say_the_url_as_given(command, capsys):
    assert main(command) == 2
    err = capsys.readouterr().err
    assert "s3://bkt/run1" in err and "s3:/bkt" not in err and len(err.strip().splitlines()) == 1

"""Every ```python example of the README, run as written: only the servers are swapped for the test ones."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import re
import shutil
import textwrap

import pytest

from tests.fakes.fake_runninghub import GOOD_KEY, FakeRunningHub
from tests.helpers.manifests import ROOT

pytestmark = pytest.mark.real

README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, re.DOTALL)

#: a model-free workflow with the markers the library example uses ($prompt, $seed)
PROMPT_WORKFLOW = {
    "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 255}},
    "2": {"class_type": "ImageAddNoise", "inputs": {"image": ["1", 0], "seed": 0, "strength": 0.3}, "_meta": {"title": "$seed"}},
    "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "readme"}, "_meta": {"title": "$output.image"}},
    "4": {"class_type": "StringConcatenate", "inputs": {"string_a": "a photo of", "string_b": "x", "delimiter": " "},
          "_meta": {"title": "$prompt.string_b!"}},
    "5": {"class_type": "PreviewAny", "inputs": {"source": ["4", 0]}, "_meta": {"title": "$output.caption"}},
}


def _run(code: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {"__name__": "__readme__"})  # noqa: S102 - the README's own code
    return out.getvalue()


def test_there_are_three_python_examples():
    assert len(BLOCKS) == 3, "a new README example needs its test here"


def test_library_example(real_comfy, tmp_path, monkeypatch):
    (tmp_path / "workflow.json").write_text(json.dumps(PROMPT_WORKFLOW))
    monkeypatch.chdir(tmp_path)
    printed = _run(BLOCKS[0].replace("http://127.0.0.1:8188", real_comfy.url))
    assert printed.startswith("completed ") and "'image': [" in printed, printed


def test_runninghub_example(tmp_path, monkeypatch):
    fake = FakeRunningHub().start()
    try:
        nodes = {"3": {"class_type": "KSampler", "inputs": {"seed": 1}, "_meta": {"title": "$seed"}},
                 "6": {"class_type": "CLIPTextEncode", "inputs": {"text": ""}, "_meta": {"title": "$prompt.text!"}},
                 "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "x"}}}
        fake.workflows["1904136902449209346"] = nodes
        (tmp_path / "my_workflow.json").write_text(json.dumps({"_source": "runninghub", "_workflow_id": "1904136902449209346",
                                                               **nodes}))
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("RUNNINGHUB_API_KEY", GOOD_KEY)
        monkeypatch.setenv("RUNNINGHUB_BASE_URL", fake.url)
        body = "\n".join(line + ("\nresults.append(r)" if line.startswith("r = await") else "")
                         for line in BLOCKS[1].splitlines())
        code = ("import os\nfrom comfykit_batch import ComfyKit\n\nasync def main(results):\n"
                + textwrap.indent(body, "    ") + "\n    await kit.close()\n")
        scope: dict = {}
        exec(compile(code, "README.md", "exec"), scope)  # noqa: S102 - the README's own code
        results: list = []
        asyncio.run(scope["main"](results))
        assert [r.status for r in results] == ["completed"] * 3, [r.msg for r in results]
        creates = [body for path, body in fake.calls if path.endswith(("/create", "/run"))]
        assert len(creates) == 3 and "workflow" in creates[2] and "webappId" in creates[1]
    finally:
        fake.stop()


def test_batch_example(real_comfy, tmp_path, monkeypatch):
    shutil.copytree(ROOT / "manifests", tmp_path / "manifests")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COMFYUI_URL", real_comfy.url)
    printed = _run(BLOCKS[2])
    assert printed.startswith("example-sweep: 28 jobs"), printed
    assert printed.rstrip().splitlines()[-1].startswith("4 0 0 "), printed
    jobs = json.loads((tmp_path / "output" / "example-sweep" / "index.json").read_text())["jobs"]
    assert len(jobs) == 4 and all(j["status"] == "completed" for j in jobs)

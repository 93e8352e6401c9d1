"""Shared fixtures: the real ComfyUI tier and the fake server for faults."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.configuration import set_hypothesis_home_dir

from comfykit_batch.local_comfyui import LocalComfyUI, LocalComfyUIError

# Hypothesis keeps its example database outside the checkout (never a .hypothesis/ in the repository).
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "comfykit-batch-hypothesis")

# Fuzz suites: ``ci`` (the default, modest example counts) and ``long`` (``--hypothesis-profile=long``).
_FUZZ = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]}
settings.register_profile("ci", max_examples=50, **_FUZZ)
settings.register_profile("long", max_examples=2000, **_FUZZ)
settings.load_profile("ci")  # pytest's --hypothesis-profile is applied after conftest, so it still wins

TESTS = Path(__file__).resolve().parent
WORKFLOWS = TESTS / "workflows"
TEST_NODES = TESTS / "comfy_nodes" / "comfykit_test_nodes"


def _start_real(tmp_path_factory: pytest.TempPathFactory, name: str) -> LocalComfyUI:
    try:
        return LocalComfyUI(tmp_path_factory.mktemp(name), custom_nodes=[TEST_NODES]).start()
    except LocalComfyUIError as exc:  # the tier fails loudly, never skips
        pytest.fail(f"the real ComfyUI server could not be installed or started: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def real_comfy(tmp_path_factory: pytest.TempPathFactory):
    """A real ComfyUI (CPU, model-free nodes, the project's test nodes) for the whole session."""
    server = _start_real(tmp_path_factory, "comfy-a")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def real_comfy_b(tmp_path_factory: pytest.TempPathFactory):
    """A second real server, for spreading a batch over two backends."""
    server = _start_real(tmp_path_factory, "comfy-b")
    yield server
    server.stop()


@pytest.fixture
def fake_comfy():
    from tests.fakes.fake_comfyui import FakeComfyUI

    server = FakeComfyUI().start()
    yield server
    server.stop()


@pytest.fixture
def workflows() -> Path:
    return WORKFLOWS

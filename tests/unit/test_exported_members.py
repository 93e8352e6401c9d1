"""The public API is exactly what the README documents: every name in ``__all__`` exists, and nothing else is promised."""

from __future__ import annotations

import types
from pathlib import Path

import comfykit_batch


def defined_names() -> set[str]:
    """What importing the package binds (submodules aside), plus the executors it loads on first use."""
    from comfykit_batch.executors import factory

    bound = {n for n, v in vars(comfykit_batch).items() if not n.startswith("_") and not isinstance(v, types.ModuleType)}
    return bound | set(factory.EXECUTOR_CLASSES)


def test_all_is_exactly_what_the_package_defines():
    assert set(comfykit_batch.__all__) == defined_names()
    assert len(comfykit_batch.__all__) == len(set(comfykit_batch.__all__))


def test_every_public_name_is_in_the_readme():
    readme = (Path(comfykit_batch.__file__).resolve().parents[1] / "README.md").read_text()
    missing = [n for n in comfykit_batch.__all__ if f"{n}" not in readme]
    assert not missing, f"public but undocumented: {missing}"


def test_every_exported_member_exists_and_says_it_is_ours():
    for name in comfykit_batch.__all__:
        member = getattr(comfykit_batch, name)
        if not isinstance(member, type) and not callable(member):
            continue  # DEFAULTS, type aliases
        module = getattr(member, "__module__", "comfykit_batch")
        if module in ("typing", "collections.abc"):
            continue  # a type alias (ProgressCallback)
        assert module.startswith("comfykit_batch"), f"{name} comes from {module}"


def test_every_error_the_package_defines_has_the_one_base_class():
    from comfykit_batch import errors

    classes = [v for v in vars(errors).values() if isinstance(v, type) and issubclass(v, Exception)]
    assert len(classes) >= 10
    assert all(issubclass(c, comfykit_batch.ComfyKitError) for c in classes)


def test_executors_share_one_interface_and_one_error_family():
    for name in ("HttpExecutor", "WebSocketExecutor", "RunningHubExecutor"):
        cls = getattr(comfykit_batch, name)
        assert issubclass(cls, comfykit_batch.Executor)
        for method in ("prepare", "check", "types_for", "execute", "download", "close"):
            assert callable(getattr(cls, method)), f"{name}.{method}"
    assert issubclass(comfykit_batch.AuthError, comfykit_batch.BackendError)


#: exception classes that never leave the package (each caught where it is raised), with why
INTERNAL = {"Stop": "ends an executor's wait; caught in the executor",
            "ProtocolError": "the HTTP pool's broken answer, mapped to BackendError by transport.mapped",
            "ConnectTimeout": "the HTTP pool's connect timeout, mapped to BackendError by transport.mapped"}


def test_every_public_exception_class_of_the_package_is_a_comfykit_error():
    import importlib
    import pkgutil

    found = []
    for info in pkgutil.walk_packages(comfykit_batch.__path__, "comfykit_batch."):
        if info.name.endswith("__main__"):
            continue  # running it is the CLI
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if isinstance(obj, type) and issubclass(obj, BaseException) and obj.__module__ == info.name:
                found.append(obj)
                if not name.startswith("_") and name not in INTERNAL:
                    assert issubclass(obj, comfykit_batch.ComfyKitError), f"{info.name}.{name}"
    assert len(found) >= 12

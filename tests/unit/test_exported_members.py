"""The public API is exactly what the README documents: every name in ``__all__`` exists, and nothing else is promised."""

from __future__ import annotations

import comfykit_batch

PUBLIC = {
    "DEFAULTS", "AuthError", "BackendError", "BackendSpec", "ComfyKit", "ComfyKitError", "ConfigError", "Defaults",
    "ExecuteResult", "Executor", "Failure", "HttpExecutor", "InputType", "LocalComfyUI", "LocalServerError", "Manifest",
    "ManifestError", "MissingNodesError", "OutputFile", "Parameter", "ParameterError", "Plan", "Progress",
    "ProgressCallback", "ProgressEvent", "RunOptions", "RunningHubExecutor", "Summary", "UsageError",
    "WebSocketExecutor", "Workflow", "WorkflowError", "WorkflowSpec", "create_executor", "load_manifest", "plan",
    "resolve_workflow", "run_manifest",
}


def test_all_is_the_documented_public_api():
    assert set(comfykit_batch.__all__) == PUBLIC


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
INTERNAL = {"Stop": "ends an executor's wait; caught in the executor", "TooLarge": "a download refusal mapped to BackendError",
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

"""Runs calls through the published ``comfykit`` (in its own venv) and prints what came back, as JSON.

Read from stdin: ``{"kit": {...ComfyKit arguments...}, "calls": [{"workflow": path|dict, "params": {...}}],
"dumps": [result dicts]}``. Printed: ``{"results": [...], "closed": ..., "dumps": [...]}``, where each
result is its ``model_dump()``, the Python type name of each field, and its ``model_dump_json()``
with and without indent; ``dumps`` are comfykit's ``model_dump_json`` of the given dicts (to compare
with ours byte for byte). Imports only the standard library and comfykit: it runs in the peer's venv.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys


async def main(spec: dict) -> dict:
    from comfykit import ComfyKit
    from comfykit.comfyui.models import ExecuteResult

    kit = ComfyKit(**spec["kit"])
    results = []
    for call in spec["calls"]:
        if isinstance(call["workflow"], dict):
            r = await kit.execute_json(call["workflow"], call.get("params"))
        else:
            r = await kit.execute(call["workflow"], call.get("params"))
        results.append(describe(r))
    try:
        closed = repr(await kit.close())
    except Exception as exc:  # comfykit 0.1.12's WebSocket executor has no close()
        closed = f"raised {type(exc).__name__}"
    dumps = [[ExecuteResult(**d).model_dump_json(), ExecuteResult(**d).model_dump_json(indent=2)] for d in spec["dumps"]]
    return {"results": results, "closed": closed, "dumps": dumps}


def describe(result) -> dict:
    dumped = result.model_dump()
    return {"dump": dumped, "types": {k: type(v).__name__ for k, v in dumped.items()},
            "json": result.model_dump_json(), "json_indent": result.model_dump_json(indent=2)}


if __name__ == "__main__":
    logging.disable(logging.CRITICAL)  # the published package configures logging at import
    sys.stdout.write(json.dumps(asyncio.run(main(json.loads(sys.stdin.read())))) + "\n")

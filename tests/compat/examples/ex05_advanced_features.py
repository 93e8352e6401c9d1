"""The published package's advanced patterns: gather, error handling, executor types, results, Path sources."""

import asyncio
from pathlib import Path

from comfykit_batch import ComfyKit

WORKFLOW = "workflows/t2i_model_free.json"


async def main() -> None:
    kit = ComfyKit()
    tasks = [kit.execute(WORKFLOW, {"prompt": p}) for p in ("a cat", "a dog", "a bird")]
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(not isinstance(r, Exception) and r.status == "completed" for r in results), results

    result = await kit.execute("non_existent_workflow.json", {"prompt": "test"})  # no exception: a failed result
    print(f"expected failure: {result.status}: {result.msg}")
    assert result.status != "completed" and "non_existent_workflow.json" in result.msg

    ComfyKit(runninghub_timeout=10)
    ComfyKit(api_key="your-api-key", cookies="session=abc123")
    assert ComfyKit(executor_type="http").executor_type == "http"
    assert ComfyKit(executor_type="websocket").executor_type == "websocket"

    result = await kit.execute(WORKFLOW, {"prompt": "a test image"})
    for var, images in result.images_by_var.items():
        print(f"{var}: {len(images)} images")
    assert result.images_by_var and not result.videos and not result.audios and result.texts == ["a test image"]

    result = await kit.execute(Path(WORKFLOW))  # the required prompt is missing: a failed result naming it
    assert result.status != "completed" and "prompt" in result.msg, result.msg
    result = await kit.execute(Path(WORKFLOW), {"prompt": "from a Path"})
    assert result.status == "completed", result.msg
    await kit.close()


if __name__ == "__main__":
    asyncio.run(main())
    print("advanced features done")

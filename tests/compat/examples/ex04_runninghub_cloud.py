"""RunningHub the published package's way: a workflow id, the same parameter format, local and cloud mixed."""

import asyncio
import os

from comfykit_batch import ComfyKit

WORKFLOW_ID = os.environ["EXAMPLE_RUNNINGHUB_WORKFLOW"]


async def main() -> None:
    if not os.getenv("RUNNINGHUB_API_KEY"):
        raise SystemExit("set RUNNINGHUB_API_KEY")
    kit = ComfyKit()
    result = await kit.execute(WORKFLOW_ID, {"prompt": "a beautiful sunset"})
    assert result.status == "completed", result.msg

    kit = ComfyKit(runninghub_api_key=os.environ["RUNNINGHUB_API_KEY"], runninghub_timeout=600, runninghub_retry_count=5)
    result = await kit.execute(WORKFLOW_ID, {"prompt": "a cyberpunk city", "seed": 42, "steps": 20})
    assert result.status == "completed" and result.ignored_params == ["steps"], (result.msg, result.ignored_params)

    local = await kit.execute("workflows/t2i_model_free.json", {"prompt": "local"})
    cloud = await kit.execute(WORKFLOW_ID, {"prompt": "cloud"})
    print(f"local {local.status}, cloud {cloud.status}, {len(cloud.images)} cloud images")
    assert local.status == cloud.status == "completed", (local.msg, cloud.msg)
    await kit.close()


if __name__ == "__main__":
    asyncio.run(main())
    print("runninghub done")

"""The published package's quick start, as its users write it: construct, execute, check the status."""

import asyncio
import os

from comfykit_batch import ComfyKit

WORKFLOW = os.environ.get("EXAMPLE_WORKFLOW", "workflows/t2i_model_free.json")


async def main() -> None:
    kit = ComfyKit()
    print(f"connected to {kit.comfyui_url}")
    result = await kit.execute(WORKFLOW, {"prompt": "a beautiful sunset over the ocean"})
    print(f"status {result.status}, {len(result.images)} images, duration {result.duration}")
    for i, url in enumerate(result.images, 1):
        print(f"  {i}. {url}")
    assert result.status in ["completed", "error"], "Should have valid status"
    await kit.close()


if __name__ == "__main__":
    asyncio.run(main())
    print("quick start done")

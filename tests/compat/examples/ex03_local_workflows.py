"""Local workflows as the published examples run them: a file, extra parameters, a dict, result handling."""

import asyncio
import json

from comfykit_batch import ComfyKit

WORKFLOW = "workflows/t2i_model_free.json"


async def main() -> None:
    kit = ComfyKit()
    result = await kit.execute(WORKFLOW, {"prompt": "a cute cat playing with yarn"})
    assert result.status == "completed" and result.prompt_id is not None, result.msg

    # parameters the workflow has no marker for (seed, steps) are ignored, as in comfykit, and named
    result = await kit.execute(WORKFLOW, {"prompt": "a futuristic city at night", "seed": 42, "steps": 20})
    print(f"duration {result.duration:.2f}s, {len(result.images)} images, ignored {result.ignored_params}")
    assert result.status == "completed" and result.duration > 0, result.msg

    with open(WORKFLOW) as fh:
        workflow_dict = json.load(fh)
    result = await kit.execute_json(workflow_dict, {"prompt": "a beautiful landscape"})
    assert result.status == "completed", result.msg

    result = await kit.execute(WORKFLOW, {"prompt": "a mountain"})
    print(f"images {result.images}, by variable {result.images_by_var}, texts {result.texts}")
    if result.status != "completed":
        print(f"failed: {result.msg}")
    assert result.status == "completed" and isinstance(result.images, list) and result.outputs is not None
    assert result.texts == ["a mountain"]
    await kit.close()


if __name__ == "__main__":
    asyncio.run(main())
    print("local workflows done")

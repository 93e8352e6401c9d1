"""Configuration the published package's way: defaults, arguments, environment, priority, RunningHub."""

import asyncio
import os

from comfykit_batch import ComfyKit


async def main() -> None:
    kit = ComfyKit()
    assert kit.comfyui_url == "http://127.0.0.1:8188" and kit.executor_type == "http"

    kit = ComfyKit(comfyui_url="http://my-server:8188", executor_type="websocket", api_key="my-api-key")
    assert (kit.comfyui_url, kit.executor_type, kit.api_key) == ("http://my-server:8188", "websocket", "my-api-key")

    os.environ["COMFYUI_BASE_URL"] = "http://env-server:8188"
    os.environ["COMFYUI_API_KEY"] = "env-key"
    kit = ComfyKit()
    assert kit.comfyui_url == "http://env-server:8188" and kit.api_key == "env-key"
    assert ComfyKit(comfyui_url="http://param:8188").comfyui_url == "http://param:8188", "arguments win"
    del os.environ["COMFYUI_BASE_URL"], os.environ["COMFYUI_API_KEY"]

    kit = ComfyKit(runninghub_api_key="rh-key-xxx", runninghub_timeout=600, runninghub_instance_type="plus")
    assert (kit.runninghub_api_key, kit.runninghub_timeout, kit.runninghub_instance_type) == ("rh-key-xxx", 600, "plus")

    local, remote = ComfyKit(comfyui_url="http://127.0.0.1:8188"), ComfyKit(comfyui_url="http://remote:8188")
    assert local.comfyui_url != remote.comfyui_url
    for k in (local, remote):
        await k.close()


if __name__ == "__main__":
    asyncio.run(main())
    print("configuration done")

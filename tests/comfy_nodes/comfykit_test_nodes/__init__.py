"""Custom ComfyUI nodes for the real-server test tier: a slow node with progress, a node that raises."""

import time

import comfy.model_management
import comfy.utils


class ComfykitSlowProgress:
    """Sleeps ``steps`` x ``step_seconds`` while reporting progress; honours interrupts between steps."""

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "steps": ("INT", {"default": 5, "min": 1, "max": 10000}),
                "step_seconds": ("FLOAT", {"default": 0.05, "min": 0.0, "max": 60.0, "step": 0.01}),
                "label": ("STRING", {"default": "slow"}),
            }
        }

    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"
    OUTPUT_NODE = True
    CATEGORY = "comfykit_test"

    def run(self, steps, step_seconds, label):
        bar = comfy.utils.ProgressBar(steps)
        for _ in range(steps):
            comfy.model_management.throw_exception_if_processing_interrupted()
            time.sleep(step_seconds)
            bar.update(1)
        text = f"{label}:{steps}"
        return {"ui": {"text": [text]}, "result": (text,)}


class ComfykitRaise:
    """Raises a ValueError with the given message: a clean execution_error."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"message": ("STRING", {"default": "boom"})}}

    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"
    OUTPUT_NODE = True
    CATEGORY = "comfykit_test"

    def run(self, message):
        raise ValueError(message)


NODE_CLASS_MAPPINGS = {"ComfykitSlowProgress": ComfykitSlowProgress, "ComfykitRaise": ComfykitRaise}

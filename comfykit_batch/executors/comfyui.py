"""Former home of the ComfyUI executors, kept so existing imports work.

The shared base now lives in ``comfyui_base`` and ``HttpExecutor`` in
``comfyui_http``; import from there.
"""

from .comfyui_base import ComfyUIExecutor, failure_from_status
from .comfyui_http import HttpExecutor

__all__ = ["ComfyUIExecutor", "HttpExecutor", "failure_from_status"]

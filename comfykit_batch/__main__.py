"""``python -m comfykit_batch MANIFEST``."""

import sys

from .cli import main

sys.exit(main())

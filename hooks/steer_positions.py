"""Where a steering vector can be added (``hooks.Steer``); light, so the CLI can name the default
without importing torch."""

from typing import Literal

SteerPositions = Literal["all", "prompt", "prompt_end", "generated"]
STEER_POSITIONS = ("all", "prompt", "prompt_end", "generated")
#: where a steering vector is added unless told otherwise (every prompt token), everywhere in handan
DEFAULT_STEER_POSITIONS = "prompt"

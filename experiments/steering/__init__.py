"""The causal test: steer the residual stream along a direction and measure how long the model thinks.

- ``run_steering``: generate every (direction, alpha) condition → steering table;
- ``summarise_steering`` / ``dose_response`` / ``compare_slopes`` / ``human_alignment``: its statistics;
- ``plot_dose_response``: the figure.
"""

from experiments.steering.analysis import (
    compare_slopes,
    dose_response,
    human_alignment,
    summarise_steering,
)
from experiments.steering.experiment import (
    STEERING_COLUMNS,
    prompt_end_activations,
    random_directions,
    residual_norm,
    run_steering,
)
from experiments.steering.figures import plot_dose_response

__all__ = [
    "STEERING_COLUMNS",
    "compare_slopes",
    "dose_response",
    "human_alignment",
    "plot_dose_response",
    "prompt_end_activations",
    "random_directions",
    "residual_norm",
    "run_steering",
    "summarise_steering",
]

"""The causal test: steer the residual stream along a direction and measure how long the model thinks.

- ``run_steering``: generate every (direction, alpha) condition → steering table;
- ``injected_norm`` / ``prompt_end_activations``: the unit of alpha, the activations directions
  are fitted on;
- ``summarise_steering`` / ``dose_response`` / ``compare_slopes`` / ``human_alignment``: its statistics;
- ``plot_dose_response``: the figure.
"""

from experiments.steering.alignment import human_alignment
from experiments.steering.analysis import compare_slopes, dose_response, summarise_steering
from experiments.steering.experiment import (
    STEERING_COLUMNS,
    random_directions,
    run_steering,
)
from experiments.steering.figures import plot_dose_response
from experiments.steering.norms import injected_norm, prompt_end_activations

__all__ = [
    "STEERING_COLUMNS",
    "compare_slopes",
    "dose_response",
    "human_alignment",
    "injected_norm",
    "plot_dose_response",
    "prompt_end_activations",
    "random_directions",
    "run_steering",
    "summarise_steering",
]

"""handan.probes: linear probes, sweeps with controls, contrasts and steering directions."""

from probes.contrasts import compare, transfer
from probes.estimator import LinearProbe
from probes.layer_sweep import DEFAULT_ALPHAS, sweep

__all__ = ["DEFAULT_ALPHAS", "LinearProbe", "compare", "sweep", "transfer"]

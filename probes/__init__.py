"""handan.probes: linear probes, sweeps with controls, contrasts and steering directions."""
from probes.compare import compare, transfer
from probes.estimator import LinearProbe
from probes.sweep import DEFAULT_ALPHAS, sweep

__all__ = ["DEFAULT_ALPHAS", "LinearProbe", "compare", "sweep", "transfer"]

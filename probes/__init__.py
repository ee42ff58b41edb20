"""handan.probes: linear probes, sweeps with controls, contrasts and steering directions."""

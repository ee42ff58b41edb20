"""handan experiments, one sub-package per stage of the data flow:

data (human trials → Items) → models (specs, loading, organism) → generation (traces + store) →
behaviour / steering (and probes/ at the top level) → pipeline (config, layout, stages, report) →
cli. ``contracts`` holds the tables stages hand each other, ``errors`` handan's exception types.
"""

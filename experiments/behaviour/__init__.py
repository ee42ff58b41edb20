"""Behavioural analysis: does reasoning cost track human cost, teacher vs student vs baseline?

Public API: :func:`analyse` (Items + Traces tables -> result tables), :func:`write_behaviour_outputs`
(CSVs + figures), :func:`triples_from_roles` and :func:`load_pairs` (which models to compare).
"""

from experiments.behaviour.roles import load_pairs, triples_from_roles
from experiments.behaviour.run import OUTPUT_FILES, analyse, write_behaviour_outputs

__all__ = ["OUTPUT_FILES", "analyse", "load_pairs", "triples_from_roles", "write_behaviour_outputs"]

"""The model organism: a small RL-trained teacher, a direct-answer baseline and the student
distilled from the teacher into the baseline, on the 4-bit binary arithmetic items.

See ``task.py`` (items, scratchpad), ``tokenizer.py``, ``models.py``, ``sft.py``, ``rl.py``,
``train.py`` (the stages) and the shipped checkpoints in ``checkpoints/``.
"""

from experiments.models.organism.task import organism_items
from experiments.models.organism.train import ROLES, checkpoint_dir, train_all

__all__ = ["ROLES", "checkpoint_dir", "organism_items", "train_all"]

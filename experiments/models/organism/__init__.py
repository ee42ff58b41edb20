"""The model organism: an RL-trained teacher, a baseline that reasons in plain text and the
student distilled from the teacher into the baseline, on five tasks with human reaction times
(binary add / sub, relational 3ps / 4ps / carddir), in several independently trained seeds.

See ``task.py`` (items: ``binary.py``, ``relational.py``), ``corpus.py`` (what each model learns
from), ``tokenizer.py``, ``models.py``, ``sft.py``, ``rl.py``, ``train.py`` (the stages),
``evaluate.py`` and ``layout.py`` (the shipped checkpoints in ``checkpoints/seed{N}/``).
"""

from experiments.models.organism.layout import ROLES, checkpoint_dir
from experiments.models.organism.task import organism_items
from experiments.models.organism.train import train_all

__all__ = ["ROLES", "checkpoint_dir", "organism_items", "train_all"]

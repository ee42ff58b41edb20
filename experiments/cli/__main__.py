"""`python -m experiments.cli` = `handan`."""

from experiments.cli import app

app()

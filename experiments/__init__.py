"""handan experiments: tasks and human data, model specs, behaviour, organism, pipelines, CLI."""

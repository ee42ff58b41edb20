"""handan.hooks: everything that touches a running model."""

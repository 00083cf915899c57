"""Training loops and model costs."""

"""Tasks: data, loss and metric of one problem type, with loaders for real sources."""

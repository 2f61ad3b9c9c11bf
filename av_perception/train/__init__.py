"""Training of the package's models (PyTorch; the `train` extra)."""

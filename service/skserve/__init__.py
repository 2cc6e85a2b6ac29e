"""skserve: train, serve, batch-score and roll out scikit-learn models on Kubernetes."""

__version__ = "0.1.0"

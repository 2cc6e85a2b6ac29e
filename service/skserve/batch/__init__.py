"""Batch scoring: Azure-ML-style batch jobs over CSV/Parquet files, locally and as Kubernetes
Jobs. `plan` and `jobs` are pure; `run`, `output` and `kube` do the I/O."""

"""Fixtures of the Helm chart tests. The helpers live in chart_helpers.py (a unique module
name: `from conftest import ...` would be ambiguous next to tests/conftest.py)."""

from chart_helpers import checkov, helm, kubernetes_validate_cli

__all__ = ["checkov", "helm", "kubernetes_validate_cli"]

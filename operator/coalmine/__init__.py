"""Coalmine: a Kubernetes operator for safe progressive rollouts of ML models."""

__version__ = "0.1.0"

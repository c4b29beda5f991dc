"""The Coalmine model server: Open Inference Protocol V2 and KServe V1 for scikit-learn."""

__version__ = "0.1.0"

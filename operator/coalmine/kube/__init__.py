"""The thin I/O layer: every Kubernetes API call of the operator lives here."""

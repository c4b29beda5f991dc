"""Day-2 monitoring: pure decisions on the figures of every serving variant (docs/monitoring.md)."""

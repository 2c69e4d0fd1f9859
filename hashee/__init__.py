"""hashee-bench: HashEE (hash-based token-level early exiting) and early-exit baselines on ELUE."""

__version__ = "0.1.0"

"""The core: model, hashes, backbones, data, tasks, methods registry (with the multi-exit base),
the one trainer, checkpoints. Imports nothing above it."""

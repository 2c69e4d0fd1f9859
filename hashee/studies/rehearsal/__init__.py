"""The rehearsal (config/rehearsal.yaml, docs/paper-run.md): the paper run in miniature, offline: tiny random
checkpoints of every hub model it names (checkpoints.py) and generated data in the real layouts (data.py)."""

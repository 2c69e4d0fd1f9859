"""ELUE, the benchmark's main study: its data (the synthetic demo generator), one training run, the
submission writer, validator and local scorer. Evaluation, FLOPs, timing, scores and tables are the
measurement layer's (hashee.measure), shared with the other studies."""

"""ELUE, the benchmark's main study: its data (the synthetic demo generator), one training run, the
submission writer, validator and local scorer, and its tables (`table`: the ELUE table and the hash
ablation). Evaluation, FLOPs, timing, scores and what every study's tables share are the measurement
layer's (hashee.measure)."""

"""The difficulty-learnability study (docs/difficulty.md): can a model learn which instances are hard?

- `data`: readers of SNLI 1.0's raw release and of a CoNLL-style tagging corpus, and the offline
  generator that writes both layouts;
- `labels`: human-defined labels (no-majority pairs vs simple ones, seeded balanced split),
  per-layer correctness vectors of a multi-exit model, the exit layer a prediction implies;
- `metrics`: micro P/R/F1 over (instance, layer) cells, positive = "this layer is wrong";
- `predictors`: Majority, Linear-M, Linear-B, BiLSTM and BERT, trained by `hashee.core.training.train`;
- `study`: the three studies end to end (one CSV of rows each); `table`: ours beside the paper's.
"""

# The three studies, in the table's order: one job and one rows CSV each (`hashee difficulty-run STUDY`).
STUDIES = ("human", "sentence", "token")

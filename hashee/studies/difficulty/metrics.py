"""Micro precision / recall / F1 over (instance, layer) cells, positive = "this layer gets it wrong"
(docs/difficulty.md). Padding positions (token level) are masked out of the counts — the reference
counts them as "wrong"."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import precision_recall_fscore_support

# One result row per (level, predictor), as the study jobs write them and the table job reads them.
ROW_COLUMNS = ["level", "predictor", "precision", "recall", "f1", "accuracy", "chance", "exit_layer",
               "exit_accuracy", "full_accuracy", "n_train", "n_test", "num_layers", "backbone"]


def micro_prf(true_wrong: np.ndarray, predicted_wrong: np.ndarray, mask: np.ndarray | None = None
              ) -> tuple[float, float, float]:
    """Percentages (P, R, F1). true_wrong / predicted_wrong (..., L) 0/1; mask (...) 1 on real
    instances/tokens, 0 on padding (None: every cell counts). An empty positive set gives 0."""
    true_wrong, predicted_wrong = np.asarray(true_wrong), np.asarray(predicted_wrong)
    if true_wrong.shape != predicted_wrong.shape:
        raise ValueError(f"shapes differ: {true_wrong.shape} vs {predicted_wrong.shape}")
    if mask is not None:
        keep = np.asarray(mask).astype(bool)
        true_wrong, predicted_wrong = true_wrong[keep], predicted_wrong[keep]
    p, r, f, _ = precision_recall_fscore_support(true_wrong.reshape(-1).astype(int),
                                                 predicted_wrong.reshape(-1).astype(int),
                                                 average="binary", pos_label=1, zero_division=0)
    return 100 * float(p), 100 * float(r), 100 * float(f)

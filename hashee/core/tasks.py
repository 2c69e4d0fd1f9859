"""The six ELUE tasks: one table that every other module looks tasks up in.

Column layouts are those of the real ELUE release (as read by txsun1997/HashEE and
fastnlp/ElasticBERT): train/dev files have a header and a label column, test files have an
`index` column first and no label. Columns are located by position, like the reference loaders;
headers are checked for their number of fields.
"""

from __future__ import annotations

from dataclasses import dataclass

from hashee.core.errors import unknown_name


@dataclass(frozen=True)
class TaskSpec:
    name: str
    # Header of train/dev files and of test files, as in the ELUE release.
    labeled_header: tuple[str, ...]
    test_header: tuple[str, ...]
    # Positions (0-based) of text_a, text_b (None: single sentence) and the label in train/dev.
    text_a: int
    text_b: int | None
    label: int
    # Positions of text_a, text_b in test files (after `index`).
    test_text_a: int
    test_text_b: int | None
    labels: tuple[str, ...] | None  # None: regression
    metric: str  # 'acc' | 'acc_f1' | 'pearson_spearman'
    score_range: tuple[float, float] | None = None  # regression targets
    max_length: int = 128  # ELUE default; IMDb is long

    @property
    def is_regression(self) -> bool:
        return self.labels is None

    @property
    def num_labels(self) -> int:
        return 1 if self.labels is None else len(self.labels)

    @property
    def is_pair(self) -> bool:
        return self.text_b is not None


_PAIR_TEST = ("index", "premise", "hypothesis")

TASKS: dict[str, TaskSpec] = {
    t.name: t
    for t in [
        TaskSpec("SST-2", ("sentence", "label"), ("index", "sentence"), 0, None, 1, 1, None,
                 ("0", "1"), "acc"),
        TaskSpec("IMDb", ("sentence", "label"), ("index", "sentence"), 0, None, 1, 1, None,
                 ("0", "1"), "acc", max_length=512),
        TaskSpec("SNLI", ("premise", "hypothesis", "label"), _PAIR_TEST, 0, 1, 2, 1, 2,
                 ("0", "1", "2"), "acc"),
        TaskSpec("SciTail", ("premise", "hypothesis", "label"), _PAIR_TEST, 0, 1, 2, 1, 2,
                 ("0", "1"), "acc"),
        TaskSpec("MRPC", ("Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"),
                 ("index", "#1 ID", "#2 ID", "#1 String", "#2 String"), 3, 4, 0, 3, 4,
                 ("0", "1"), "acc_f1"),
        TaskSpec("STS-B", ("sentence1", "sentence2", "label"), ("index", "sentence1", "sentence2"),
                 0, 1, 2, 1, 2, None, "pearson_spearman", score_range=(0.0, 5.0)),
    ]
}

METRIC_NAMES = {"acc": "accuracy", "acc_f1": "(acc+F1)/2", "pearson_spearman": "(Pearson+Spearman)/2"}


def get_task(name: str) -> TaskSpec:
    try:
        return TASKS[name]
    except KeyError:
        raise unknown_name("task", name, TASKS) from None

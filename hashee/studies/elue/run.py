"""One ELUE training run, as `hashee train` calls it: build the method's model from the backbone,
prepare it (HashEE: its hash), train it through the one trainer (`hashee.core.training.train`, model
selection by `hashee.measure.evaluation.dev_scorer` on dev), save it. `hashee train --evaluate-out`
then evaluates the saved model with `hashee.measure.evaluation.evaluate_trained`, as `hashee evaluate`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hashee.core.methods import Method
from hashee.core.progress import DEFAULT_EVERY
from hashee.core.tasks import TaskSpec


@dataclass
class TrainedRun:
    method: Method
    task: TaskSpec
    best_dev: float


def train_and_save(task_name: str, method_name: str, setting: str, data_dir, backbone_name: str, params, workdir,
                   out, *, hash_file=None, device="cpu", progress: bool = True,
                   progress_every: float | None = DEFAULT_EVERY) -> TrainedRun:
    """Train `method_name` [`setting`] on a task (`params`: a `hashee.core.training.TrainParams`), resuming
    from `workdir` when it holds a checkpoint of the same run, and save the best dev model to `out`
    (atomically). `hash_file`: a fitted hash for methods that use one (HashEE fits one otherwise)."""
    import torch

    from hashee.core.backbones import load_backbone
    from hashee.core.checkpoint import save_trained
    from hashee.core.data import load_task
    from hashee.core.io import atomic_dir
    from hashee.core.methods import TrainingInputs, get_method
    from hashee.core.tasks import get_task
    from hashee.core.training import seed_everything, train
    from hashee.measure.evaluation import dev_scorer

    task = get_task(task_name)
    method = get_method(method_name, setting)
    method.check_task(task)
    backbone = load_backbone(backbone_name, method.num_layers)
    seed_everything(params.seed)
    model = method.build(backbone.config, task)
    method.init_from_backbone(model, backbone)
    tokenizer = backbone.tokenizer
    method.prepare(model, backbone, task, TrainingInputs(data_dir=str(data_dir), seed=params.seed,
                                                        max_length=params.max_length, hash_file=hash_file))
    data = load_task(task.name, data_dir, tokenizer, params.max_length, splits=("train", "dev"),
                     cache_dir=Path(workdir) / "tokenized")
    scorer = dev_scorer(method, data["dev"], tokenizer.pad_token_id, params.eval_batch_size, device)
    train_data = training_subset(data["train"], params.max_train_examples)
    result = train(method, model, train_data, data["dev"], params, workdir, tokenizer.pad_token_id,
                   device, dev_score=scorer, progress=progress, progress_every=progress_every)
    meta = {"backbone": backbone.name, "seed": params.seed, "train_params": params.to_dict(),
            "dev_history": result.history, "best_dev": result.best_dev, "torch": torch.__version__}
    with atomic_dir(out) as tmp:
        save_trained(tmp, method, model.cpu(), tokenizer, task, meta)
    return TrainedRun(method, task, result.best_dev)


# The subset's own seed: not the run's, so that every method and seed trains on the same examples.
SUBSET_SEED = 0


def training_subset(dataset, max_examples: int):
    """`max_examples` training examples drawn at random once (SUBSET_SEED), kept in file order; all when 0
    or when the split is no larger. Random, not the first N: official files can be sorted (STS-B by genre)."""
    import numpy as np

    if not max_examples or len(dataset) <= max_examples:
        return dataset
    rows = np.sort(np.random.default_rng(SUBSET_SEED).choice(len(dataset), size=max_examples, replace=False))
    return dataset.select(rows.tolist())


def fit_task_hashes(task_name: str, data_dir, backbone_name: str, settings: list[str], outs: list, max_length: int,
                    seed: int, buckets: int | None = None) -> list[str]:
    """Fit one HashEE hash per setting on the task's train + dev (never test) and save each to its out
    path; returns one line per hash saved. `buckets`: for settings that name none (the config's
    hash.buckets). The summarization twin: hashee.studies.summarization.run.fit_hashes."""
    from hashee.core.backbones import load_backbone
    from hashee.core.hashee_method import HashEE, encoder_hash_source
    from hashee.core.hashing import task_fitting_data
    from hashee.core.methods import METHODS
    from hashee.core.tasks import get_task

    task = get_task(task_name)
    backbone = load_backbone(backbone_name)  # all layers: a hash only needs the embeddings and vocabulary
    ids, labels = task_fitting_data(task, data_dir, backbone.tokenizer, max_length)
    source = encoder_hash_source(backbone)
    done = []
    for setting, out in zip(settings, outs):
        token_hash = METHODS.get(HashEE.name, setting).fit_hash(ids, labels, source, seed, buckets=buckets,
                                                               is_regression=task.is_regression)
        token_hash.save(out)
        done.append(f"fitted {token_hash.name} hash for {task.name} ({token_hash.num_layers} layers) -> {out}")
    return done

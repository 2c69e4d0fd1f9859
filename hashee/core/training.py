"""One trainer for every method: AdamW, linear warm-up/decay, gradient clipping, per-epoch dev
evaluation, best checkpoint chosen on dev (never test), bf16/fp16 autocast on GPU, tqdm progress,
seeded and deterministic on CPU, and a resume checkpoint every N steps in a work directory kept
apart from the run's outputs, so a killed run picks up where it stopped and ends identically.

Methods plug in through `Method.stages()`: each stage names the parameters it trains (the rest are
frozen), its loss and schedule. Multi-stage methods (DeeBERT, FastBERT) start each stage from the
best dev checkpoint of the previous one.
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from hashee.core.io import atomic_path
from hashee.core.methods import Method
from hashee.core.progress import DEFAULT_EVERY, ProgressLog


@dataclass
class TrainParams:
    epochs: float = 3
    lr: float = 5e-5
    batch_size: int = 32
    max_length: int = 128
    warmup: float = 0.1
    weight_decay: float = 0.01
    clip: float = 1.0
    checkpoint_every: int = 100
    seed: int = 42
    eval_batch_size: int = 64
    precision: str = "auto"  # auto: bf16 (or fp16) autocast on GPU, fp32 on CPU
    # Keep the word-embedding matrix (and a head tied to it) fixed, for CPU demos: on a small model its
    # dense gradient, clipping and Adam update cost a third of a step; the paper's setups train it.
    freeze_word_embeddings: bool = False
    # ELUE: train on a fixed random subset of this many examples (0: all), the same for every method and
    # seed, so that a CPU run of a large task (SST-2: 67k pairs) gives every method the same smaller budget.
    max_train_examples: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainResult:
    history: list[dict] = field(default_factory=list)  # one row per (stage, epoch): dev metric
    best_dev: float = float("nan")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def autocast_dtype(device: torch.device, precision: str):
    if device.type != "cuda" or precision == "fp32":
        return None
    if precision == "fp16" or (precision == "auto" and not torch.cuda.is_bf16_supported()):
        return torch.float16
    return torch.bfloat16


def word_embedding_parameters(model: torch.nn.Module) -> set[int]:
    """ids of the parameters `freeze_word_embeddings` keeps fixed: the word-embedding matrix of every
    core encoder in the model (CascadeBERT holds two), the matrix a model names through
    `get_input_embeddings()` (transformers' convention; models without a core encoder), and every
    parameter that is the same tensor (a tied LM head: summarization's decoder shares the matrix)."""
    from hashee.core.modeling import Embeddings

    matrices = [module.word_embeddings.weight for module in model.modules() if isinstance(module, Embeddings)]
    if hasattr(model, "get_input_embeddings"):
        matrices.append(model.get_input_embeddings().weight)
    same_tensor = {(m.data_ptr(), m.shape) for m in matrices}
    return {id(p) for p in model.parameters() if (p.data_ptr(), p.shape) in same_tensor}


def _optimizer(model, stage, trainable):
    def no_decay(name: str) -> bool:  # biases and LayerNorms: BERT's `LayerNorm`, BART's `*_layer_norm`
        return name.endswith("bias") or "layernorm" in name.lower().replace("_", "")

    fast = {id(p) for p in stage.fast_parameters(model)} & trainable if stage.fast_parameters else set()
    named = [(n, p) for n, p in model.named_parameters() if id(p) in trainable and id(p) not in fast]
    groups = [
        {"params": [p for n, p in named if not no_decay(n)], "weight_decay": stage.weight_decay},
        {"params": [p for n, p in named if no_decay(n)], "weight_decay": 0.0},
    ]
    if fast:
        groups.append({"params": [p for p in model.parameters() if id(p) in fast], "weight_decay": 0.0,
                       "lr": stage.fast_lr})
    # fused: one vectorised pass per step; 7x faster than foreach on CPU, where the word-embedding
    # matrix dominates a small model's step (torch.optim imports torch._dynamo either way).
    return torch.optim.AdamW(groups, lr=stage.lr, fused=True)


def _linear_schedule(optimizer, warmup_steps: int, total_steps: int):
    def factor(step):
        if step < warmup_steps:
            return (step + 1) / max(1, warmup_steps)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _rng_state() -> dict:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def train(method: Method, model: torch.nn.Module, train_set, dev_set, params: TrainParams, workdir,
          pad_token_id: int, device: torch.device | str = "cpu",
          dev_score: Callable[[torch.nn.Module], float] | None = None,
          on_step: Callable[[int], None] | None = None, progress: bool = True,
          progress_every: float | None = DEFAULT_EVERY, clock: Callable[[], float] | None = None) -> TrainResult:
    """Train `model` in place through `method.stages()`; on return it holds the best dev weights.

    `dev_score(model) -> float` (higher is better) is evaluated after every epoch; `on_step(step)`
    is called after each optimizer step (tests use it to kill a run midway). `progress` shows tqdm's
    bar; `progress_every` seconds (0: every step, None: never) paces the plain progress lines of
    hashee.core.progress, which are written at every epoch end too, bar or not (`clock`: for tests).
    """
    from hashee.core.data import make_loader

    device = torch.device(device)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    resume_file = workdir / "resume.pt"
    best_file = workdir / "best.pt"  # the stage's best dev weights, written only when they improve
    seed_everything(params.seed)
    model.to(device)
    stages = method.stages(model, params)
    amp = autocast_dtype(device, params.precision)
    scaler = torch.amp.GradScaler("cuda") if amp == torch.float16 else None

    state = {"stage": 0, "epoch": 0, "batch": 0, "step": 0, "history": [], "best": None, "best_dev": None}
    if resume_file.exists():
        saved = torch.load(resume_file, map_location="cpu", weights_only=False)
        if saved["params"] != params.to_dict() or saved["method"] != (method.name, method.settings):
            raise RuntimeError(f"{resume_file}: resume checkpoint was written for another run "
                               f"(method or parameters differ); delete {workdir} to start afresh")
        state = saved["state"]
        model.load_state_dict(saved["model"])
        if state["best_dev"] is not None:
            state["best"] = torch.load(best_file, map_location="cpu", weights_only=True)
    # best_dev of the last finished stage that selected on dev: kept in the state, so a run resumed in a
    # later stage (DeeBERT's exits, no dev selection) still reports it.
    result = TrainResult(history=state["history"], best_dev=state.get("result_best_dev", float("nan")))
    steps_per_epoch = math.ceil(len(train_set) / params.batch_size)
    stage_steps = [max(1, math.ceil(steps_per_epoch * stage.epochs)) for stage in stages]
    log = ProgressLog(progress_every, total_steps=sum(stage_steps), what=f"train {method.name}", clock=clock)

    for stage_index in range(state["stage"], len(stages)):
        stage = stages[stage_index]
        resuming = stage_index == state["stage"] and state["step"] > 0
        if stage.begin is not None and not resuming:
            def batches():
                for batch in make_loader(train_set, params.batch_size, pad_token_id, shuffle=False):
                    yield {k: v.to(device) for k, v in batch.items()}

            stage.begin(model, batches)
        trainable = {id(p) for p in stage.parameters(model)}
        if params.freeze_word_embeddings:
            trainable -= word_embedding_parameters(model)
        for p in model.parameters():
            p.requires_grad_(id(p) in trainable)
        optimizer = _optimizer(model, stage, trainable)
        total_steps = stage_steps[stage_index]
        scheduler = _linear_schedule(optimizer, int(stage.warmup * total_steps), total_steps)
        if resuming:
            optimizer.load_state_dict(saved["optimizer"])
            scheduler.load_state_dict(saved["scheduler"])
            if scaler is not None and saved.get("scaler"):
                scaler.load_state_dict(saved["scaler"])
        else:
            state.update(epoch=0, batch=0, step=0, best=None, best_dev=None)
        num_epochs = math.ceil(stage.epochs)
        bar = tqdm(total=total_steps, initial=state["step"], disable=not progress, leave=False,
                   desc=f"{method.name} {stage.name}", unit="step")
        log.begin_stage(stage.name, stage_index, len(stages), num_epochs, total_steps, sum(stage_steps[:stage_index]))
        for epoch in range(state["epoch"], num_epochs):
            # The order of an epoch depends only on (seed, stage, epoch), so a resumed run sees the same batches.
            loader = make_loader(train_set, params.batch_size, pad_token_id, shuffle=True,
                                 seed=params.seed * 1000 + stage_index * 100 + epoch)
            if resuming:
                _set_rng_state(saved["rng"])  # after the loader is built: its own generator is seeded
            model.train()
            for batch_index, batch in enumerate(loader):
                if batch_index < state["batch"] or state["step"] >= total_steps:
                    continue
                batch = {k: v.to(device) for k, v in batch.items()}
                with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
                    loss = stage.loss(model, batch)
                if scaler is not None:
                    scaler.scale(loss).backward()
                    scaler.unscale_(optimizer)
                else:
                    loss.backward()
                torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], params.clip)
                if scaler is not None:
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                state["step"] += 1
                state["batch"] = batch_index + 1
                bar.update(1)
                loss_value = loss.item()
                bar.set_postfix(loss=f"{loss_value:.4f}")
                log.step(loss=loss_value, examples=len(next(iter(batch.values()))), epoch=epoch + 1,
                         step=state["step"], lr=scheduler.get_last_lr()[0], best_dev=state["best_dev"])
                if params.checkpoint_every and state["step"] % params.checkpoint_every == 0:
                    _save_resume(resume_file, model, optimizer, scheduler, scaler, state, params, method)
                if on_step is not None:
                    on_step(state["step"])
            resuming = False
            state["epoch"], state["batch"] = epoch + 1, 0
            score = None
            if dev_score is not None and stage.select_on_dev:
                model.eval()
                score = float(dev_score(model))
                result.history.append({"stage": stage.name, "epoch": epoch + 1, "step": state["step"], "dev": score})
                if state["best_dev"] is None or score > state["best_dev"]:
                    state["best_dev"] = score
                    state["best"] = copy.deepcopy({k: v.cpu() for k, v in model.state_dict().items()})
                    with atomic_path(best_file) as tmp:
                        torch.save(state["best"], tmp)
            log.line(epoch=epoch + 1, step=state["step"], lr=scheduler.get_last_lr()[0], best_dev=state["best_dev"],
                     dev=score, event="epoch-end")
            if epoch + 1 < num_epochs or stage_index + 1 < len(stages):  # nothing to resume after the last
                _save_resume(resume_file, model, optimizer, scheduler, scaler, state, params, method)
        if resuming:  # killed after this stage's last epoch: its loop did not run to restore the RNG
            _set_rng_state(saved["rng"])
        bar.close()
        if state["best"] is not None:
            model.load_state_dict(state["best"])
            result.best_dev = state["result_best_dev"] = state["best_dev"]
        state.update(stage=stage_index + 1, epoch=0, batch=0, step=0)
    for p in model.parameters():
        p.requires_grad_(True)
    model.eval()
    return result


def _save_resume(path, model, optimizer, scheduler, scaler, state, params, method) -> None:
    # The best weights live in best.pt (saved when they improve), not in every resume checkpoint.
    with atomic_path(path) as tmp:
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict() if scaler else None,
                    "rng": _rng_state(), "state": {**state, "best": None}, "params": params.to_dict(),
                    "method": (method.name, method.settings)}, tmp)

"""The shared trainer: dev-only model selection, and a killed run that resumes ends identically."""

import pytest
import torch

from hashee.core.methods import get_method
from hashee.core.tasks import get_task
from hashee.core.training import TrainParams, seed_everything, train
from hashee.measure.evaluation import dev_scorer


class Killed(Exception):
    pass


@pytest.fixture(scope="module")
def setup(minilm2, tiny_task):
    return minilm2, tiny_task("SST-2")


def _run(backbone, data, workdir, on_step=None):
    method = get_method("static", "layers=2")
    seed_everything(7)
    model = method.build(backbone.config, get_task("SST-2"))
    method.init_from_backbone(model, backbone)
    params = TrainParams(epochs=2, lr=1e-4, batch_size=8, max_length=32, checkpoint_every=4, seed=7)
    pad = backbone.tokenizer.pad_token_id
    result = train(method, model, data["train"], data["dev"], params, workdir, pad,
                   dev_score=dev_scorer(method, data["dev"], pad, 16, "cpu"), on_step=on_step, progress=False)
    return model, result


def test_killed_run_resumes_to_identical_result(setup, tmp_path):
    backbone, data = setup
    straight_model, straight = _run(backbone, data, tmp_path / "straight")

    def kill(step):
        if step == 5:  # mid-epoch, after the step-4 checkpoint
            raise Killed

    with pytest.raises(Killed):
        _run(backbone, data, tmp_path / "resumed", on_step=kill)
    assert (tmp_path / "resumed" / "resume.pt").exists()
    resumed_model, resumed = _run(backbone, data, tmp_path / "resumed")
    assert [h["dev"] for h in resumed.history] == [h["dev"] for h in straight.history]
    for (name, a), b in zip(straight_model.state_dict().items(), resumed_model.state_dict().values()):
        assert torch.equal(a, b), name


def test_run_resumed_in_a_later_stage_reports_the_best_dev_score(setup, tmp_path):
    """DeeBERT's second stage selects nothing on dev: the score of the first stage's best epoch must
    survive a kill in the second stage (it used to come back as NaN)."""
    backbone, data = setup

    def run(workdir, on_step=None):
        method = get_method("deebert", "layers=2")
        seed_everything(7)
        model = method.build(backbone.config, get_task("SST-2"))
        method.init_from_backbone(model, backbone)
        params = TrainParams(epochs=1, lr=1e-4, batch_size=8, checkpoint_every=2, seed=7)
        pad = backbone.tokenizer.pad_token_id
        return train(method, model, data["train"], data["dev"], params, workdir, pad,
                     dev_score=dev_scorer(method, data["dev"], pad, 16, "cpu"), on_step=on_step, progress=False)

    straight = run(tmp_path / "straight")
    first_stage_steps = -(-len(data["train"]) // 8)
    calls = []

    def kill_in_second_stage(step):
        calls.append(step)
        if len(calls) == first_stage_steps + 3:  # the second stage, past its step-2 checkpoint
            raise Killed

    with pytest.raises(Killed):
        run(tmp_path / "resumed", on_step=kill_in_second_stage)
    assert torch.load(tmp_path / "resumed" / "resume.pt", weights_only=False)["state"]["stage"] == 1
    resumed = run(tmp_path / "resumed")
    assert straight.best_dev == straight.best_dev  # a number, not NaN
    assert (resumed.best_dev, resumed.history) == (straight.best_dev, straight.history)


def test_best_checkpoint_is_chosen_on_dev(setup, tmp_path):
    backbone, data = setup
    scores = iter([50.0, 70.0, 60.0])
    snapshots = []
    method = get_method("static", "layers=2")
    model = method.build(backbone.config, get_task("SST-2"))
    method.init_from_backbone(model, backbone)

    def fake_dev(model):
        snapshots.append({k: v.clone() for k, v in model.state_dict().items()})
        return next(scores)

    params = TrainParams(epochs=3, lr=1e-4, batch_size=8, checkpoint_every=0, seed=1)
    result = train(method, model, data["train"], data["dev"], params, tmp_path, backbone.tokenizer.pad_token_id,
                   dev_score=fake_dev, progress=False)
    assert result.best_dev == 70.0
    for name, value in model.state_dict().items():
        assert torch.equal(value, snapshots[1][name]), name  # epoch 2's weights, not the last epoch's


def test_resume_refuses_another_run(setup, tmp_path):
    backbone, data = setup
    _run(backbone, data, tmp_path)
    method = get_method("static", "layers=2")
    model = method.build(backbone.config, get_task("SST-2"))
    params = TrainParams(epochs=1, lr=3e-4, batch_size=8, seed=7)
    with pytest.raises(RuntimeError, match="another run"):
        train(method, model, data["train"], data["dev"], params, tmp_path, 0, progress=False)


def test_weight_decay_spares_biases_and_layer_norms_under_bert_and_bart_names():
    from torch import nn

    from hashee.core.methods import Stage
    from hashee.core.training import _optimizer

    model = nn.ModuleDict({"LayerNorm": nn.LayerNorm(4), "self_attn_layer_norm": nn.LayerNorm(4),
                           "layernorm_embedding": nn.LayerNorm(4), "dense": nn.Linear(4, 4)})
    stage = Stage("s", lambda m: m.parameters(), None, 1, 1e-3, 0.0, 0.01)
    optimizer = _optimizer(model, stage, {id(p) for p in model.parameters()})
    decayed, spared = optimizer.param_groups
    assert decayed["weight_decay"] == 0.01 and spared["weight_decay"] == 0.0
    assert [tuple(p.shape) for p in decayed["params"]] == [(4, 4)]  # only the Linear's weight
    assert len(spared["params"]) == 7


def test_frozen_word_embeddings_stay_put_and_the_rest_trains(setup, tmp_path):
    backbone, data = setup
    method = get_method("static", "layers=2")
    seed_everything(7)
    model = method.build(backbone.config, get_task("SST-2"))
    method.init_from_backbone(model, backbone)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    params = TrainParams(epochs=1, lr=1e-3, batch_size=8, checkpoint_every=0, seed=7, freeze_word_embeddings=True)
    train(method, model, data["train"], data["dev"], params, tmp_path, backbone.tokenizer.pad_token_id,
          progress=False)
    after = model.state_dict()
    frozen = [k for k in after if k.endswith("word_embeddings.weight")]
    assert frozen == ["bert.embeddings.word_embeddings.weight"]
    assert torch.equal(after[frozen[0]], before[frozen[0]])
    assert not torch.equal(after["bert.embeddings.position_embeddings.weight"],
                           before["bert.embeddings.position_embeddings.weight"])
    assert not torch.equal(after["bert.encoder.layer.0.attention.self.query.weight"],
                           before["bert.encoder.layer.0.attention.self.query.weight"])


def test_word_embeddings_are_found_by_what_they_are_not_by_their_names():
    """The core encoders' matrices (CascadeBERT has two), the matrix a model returns from
    get_input_embeddings(), and whatever is the same tensor (a tied head) — for every registered method,
    exactly the `*word_embeddings.weight` parameters the trainer used to freeze by name."""
    from torch import nn

    from hashee.core.methods import available_methods
    from hashee.core.modeling import EncoderConfig
    from hashee.core.training import word_embedding_parameters

    config = EncoderConfig(vocab_size=50, hidden_size=8, num_layers=3, num_heads=2, intermediate_size=16)
    for name, cls in available_methods().items():
        model = cls({}).build(config, get_task("SST-2"))
        by_name = {n for n, p in model.named_parameters() if n.endswith("word_embeddings.weight")}
        frozen = {n for n, p in model.named_parameters() if id(p) in word_embedding_parameters(model)}
        assert frozen == by_name and frozen, name
    assert len(word_embedding_parameters(available_methods()["cascadebert"]({}).build(config, get_task("SST-2")))) == 2

    class TiedLm(nn.Module):  # no core encoder: the model names its matrix
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(50, 8)
            self.mixer = nn.Linear(8, 8)
            self.head = nn.Linear(8, 50, bias=False)
            self.head.weight = nn.Parameter(self.embed.weight.data)  # another Parameter, the same tensor

        def get_input_embeddings(self):
            return self.embed

    lm = TiedLm()
    assert word_embedding_parameters(lm) == {id(lm.embed.weight), id(lm.head.weight)}
    assert word_embedding_parameters(nn.Linear(2, 2)) == set()


def test_frozen_tied_lm_head_stays_put_in_summarization(tmp_path):
    """Summarization's decoder embedding, LM head and our encoder's word embeddings are one matrix:
    freeze_word_embeddings keeps it fixed, and only it."""
    from test_summarization_model import SMALL, batch, ours_from_plain, plain_bart

    from hashee.studies.summarization.methods import SUMM_METHODS

    model = ours_from_plain(plain_bart(seed=21))
    assert model.bart.lm_head.weight is model.bart.model.shared.weight is model.bert.embeddings.word_embeddings.weight
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ids, mask = batch(seed=22)
    labels = torch.tensor([[5, 6, 7, 2], [8, 9, 2, -100], [10, 2, -100, -100]])
    features = [{"input_ids": ids[i][mask[i].bool()].tolist(), "labels": labels[i], "index": i} for i in range(3)]
    params = TrainParams(epochs=2, lr=1e-2, batch_size=3, warmup=0.0, checkpoint_every=0, seed=1,
                         freeze_word_embeddings=True)
    train(SUMM_METHODS.get("full"), model, features, features, params, tmp_path, SMALL["pad_token_id"], progress=False)
    after = model.state_dict()
    changed = {k for k in after if not torch.equal(after[k], before[k])}
    assert "bart.model.shared.weight" not in changed and "bart.lm_head.weight" not in changed
    assert "bert.embeddings.word_embeddings.weight" not in changed
    assert "bert.embeddings.position_embeddings.weight" in changed and "bart.model.decoder.layers.0.fc1.weight" in changed


def test_one_train_verb_for_both_studies_with_each_studys_defaults():
    """One `train` verb (hashee/cli/training.py): --task or --dataset picks the study, the same flags give
    the same trainer parameters, only the per-study defaults differ, and one study's own options are
    refused with the other's selector."""
    import pytest

    from hashee.cli import build_parser
    from hashee.cli.common import train_params
    from hashee.cli.training import resolve_study
    from hashee.core.errors import HasheeError

    parser = build_parser()
    flags = ["--method", "m", "--seed", "3", "--epochs", "2", "--lr", "1e-3", "--batch-size", "4", "--warmup", "0.2",
             "--weight-decay", "0", "--clip", "0.5", "--freeze-word-embeddings", "--checkpoint-every", "7",
             "--precision", "fp32", "--max-length", "16", "--workdir", "w", "--out", "o"]
    elue = parser.parse_args(["train", "--task", "SST-2", "--data-dir", "d", *flags])
    summ = parser.parse_args(["train", "--dataset", "demo-en", "--data-dir", "d", *flags])
    assert (resolve_study(elue), resolve_study(summ)) == ("task", "dataset")
    assert train_params(elue, elue.max_length) == train_params(summ, summ.max_length)
    assert train_params(elue, 16).freeze_word_embeddings
    required = ["--data-dir", "d", "--method", "m", "--workdir", "w", "--out", "o"]
    elue = parser.parse_args(["train", "--task", "SST-2", *required])
    summ = parser.parse_args(["train", "--dataset", "x", *required])
    resolve_study(elue), resolve_study(summ)
    assert (elue.batch_size, elue.backbone, elue.max_length, summ.batch_size, summ.backbone, summ.max_length) == \
        (32, "minilm", 128, 16, "minilm-seq2seq", 512)
    assert (summ.max_target_length, summ.gen_max_length, summ.splits, elue.splits) == (128, 64, "test", "dev,test")
    assert train_params(elue, 16).to_dict() == {**train_params(summ, 16).to_dict(), "batch_size": 32}
    with pytest.raises(HasheeError, match=r"^--max-target-length is an option of summarization \(--dataset\) only, not of ELUE \(--task\)$"):
        resolve_study(parser.parse_args(["train", "--task", "SST-2", *required, "--max-target-length", "9"]))
    with pytest.raises(HasheeError, match=r"^--flops-cache is an option of ELUE \(--task\) only, not of summarization \(--dataset\)$"):
        resolve_study(parser.parse_args(["train", "--dataset", "x", *required, "--flops-cache", "c"]))
    with pytest.raises(SystemExit):  # one study per command
        parser.parse_args(["train", "--task", "SST-2", "--dataset", "x", *required])


def _train_args(data, settings, root, *extra, tasks=("STS-B",)):
    """`hashee train` of `settings` on `tasks`, each run's files under root/<task>/<setting>/ (the task's
    folder only with several tasks: the paths then need {task})."""
    task_dir = "{task}/" if len(tasks) > 1 else ""
    return ["train", *(arg for task in tasks for arg in ("--task", task)), "--data-dir", str(data), "--method", "static",
            *(arg for setting in settings for arg in ("--setting", setting)), "--seed", "3", "--epochs", "1",
            "--batch-size", "8", "--max-length", "16", "--freeze-word-embeddings", "--device", "cpu", "--quiet",
            "--progress-every", "off", "--workdir", f"{root}/{task_dir}{{setting}}/work",
            "--out", f"{root}/{task_dir}{{setting}}/model", "--evaluate-out", f"{root}/{task_dir}{{setting}}/rows.csv",
            *extra]


def test_one_train_process_trains_each_task_and_setting_as_a_process_of_its_own_would(tiny_elue, tmp_path):
    """`hashee train` with several --task and --setting (the workflow's one job per method x seed): each run's
    files land where {task} and {setting} say, with the same dev and test scores as that run trained alone."""
    import pandas as pd

    from hashee.cli import run

    tasks = ("SST-2", "STS-B")
    assert run(_train_args(tiny_elue, ["layers=1", "layers=2"], tmp_path / "together", tasks=tasks)) == 0
    for task in tasks:
        assert run(_train_args(tiny_elue, ["layers=2"], tmp_path / "alone" / task, tasks=(task,))) == 0
        for setting in ("layers=1", "layers=2"):
            rows = pd.read_csv(tmp_path / "together" / task / setting / "rows.csv")
            assert set(rows["setting"]) == {setting} and set(rows["task"]) == {task}
            assert not (tmp_path / "together" / task / setting / "work").exists()  # resume files removed once saved
        together = pd.read_csv(tmp_path / "together" / task / "layers=2" / "rows.csv")
        alone = pd.read_csv(tmp_path / "alone" / task / "layers=2" / "rows.csv")
        pd.testing.assert_frame_equal(together[["split", "perf", "mflops"]], alone[["split", "perf", "mflops"]])


@pytest.mark.parametrize("settings,tasks,paths,message", [
    (["layers=1", "layers=2"], ["STS-B"], "fixed", "--out {root}/model: with several --setting, each path option must hold {{setting}} (one run's files per setting)"),
    (["layers=1", "layers=1"], ["STS-B"], "templated", "--setting: 'layers=1' is given twice"),
    (["layers=1"], ["SST-2", "STS-B"], "no task", "--out {root}/layers=1/model: with several --task, each path option must hold {{task}} (one run's files per task)"),
    (["layers=1"], ["STS-B", "STS-B"], "templated", "--task: 'STS-B' is given twice"),
])
def test_several_settings_or_tasks_need_a_path_each(tmp_path, capsys, settings, tasks, paths, message):
    from hashee.cli import main

    args = _train_args(tmp_path, settings, tmp_path, tasks=tasks)
    if paths == "fixed":
        args = [arg.replace("/{setting}", "") for arg in args]
    if paths == "no task":
        args = [arg.replace("{task}/", "").replace("{setting}", "layers=1") for arg in args]
    assert main(args) == 2
    error = capsys.readouterr().err.strip()
    assert error.splitlines() == [f"hashee train: error: {message.format(root=tmp_path)}"]


def test_one_evaluate_verb_reads_the_study_from_the_saved_model(tmp_path, capsys):
    """`hashee evaluate` takes a model of either study: its meta.json says which, and the other study's
    options are refused in one line before anything is loaded."""
    import json

    from hashee.cli import run
    from hashee.core.checkpoint import FORMAT_VERSION

    for study, meta, foreign, other in [("summarization", {"dataset": "demo-en"}, ["--flops-cache", "c"], "ELUE"),
                                        ("ELUE", {"task": "SST-2"}, ["--gen-max-length", "9"], "summarization")]:
        model = tmp_path / study
        model.mkdir()
        (model / "meta.json").write_text(json.dumps({"format": FORMAT_VERSION, **meta}))
        args = ["evaluate", "--model", str(model), "--data-dir", "d", "--out", str(tmp_path / "rows.csv"), *foreign]
        assert run(args) == 2
        assert capsys.readouterr().err == (f"hashee evaluate: error: {foreign[0]} is an option of {other} "
                                           f"({'--task' if other == 'ELUE' else '--dataset'}) only, "
                                           f"not of the {study} model {model}\n")
        assert not (tmp_path / "rows.csv").exists()


def test_fit_hash_fits_each_task_as_a_command_of_its_own_would(tiny_elue, tmp_path, capsys):
    """`hashee fit-hash` with several --task: a hash per task where {task} says, the same as fitted alone;
    without {task} in --setting-out it is one line of error."""
    import torch

    from hashee.cli import main, run

    def fit(tasks, out):
        return ["fit-hash", *(arg for task in tasks for arg in ("--task", task)), "--data-dir", str(tiny_elue),
                "--setting", "hash=frequency,layers=2", "--setting-out", out, "--buckets", "2", "--max-length", "16"]

    assert run(fit(["SST-2", "STS-B"], f"{tmp_path}/together/{{task}}.pt")) == 0
    for task in ("SST-2", "STS-B"):
        assert run(fit([task], f"{tmp_path}/alone/{task}.pt")) == 0
        together, alone = (torch.load(tmp_path / kind / f"{task}.pt") for kind in ("together", "alone"))
        assert together.keys() == alone.keys()
        assert all(torch.equal(together[k], alone[k]) if isinstance(alone[k], torch.Tensor) else together[k] == alone[k]
                   for k in alone)
    capsys.readouterr()
    assert main(fit(["SST-2", "STS-B"], f"{tmp_path}/fixed.pt")) == 2
    assert capsys.readouterr().err.strip() == (f"hashee fit-hash: error: --setting-out {tmp_path}/fixed.pt: with several "
                                               "--task, each path option must hold {task} (one run's files per task)")

"""One backbone loader: offline default, truncation, every family's hub-layout checkpoint (tiny, random,
hashee/studies/rehearsal/checkpoints.py) against transformers' own model classes, clear errors."""

import json

import pytest
import torch
from safetensors.torch import save_file

from hashee.core.backbones import load_backbone
from hashee.core.errors import HasheeError
from hashee.studies.rehearsal.checkpoints import FAMILIES, write_checkpoint


def test_minilm_loads_and_truncates():
    full = load_backbone("minilm", with_tokenizer=False)
    three = load_backbone("minilm", num_layers=3, with_tokenizer=False)
    assert full.config.num_layers == 6 and three.config.num_layers == 3
    encoder = three.build_encoder()
    assert len(encoder.encoder.layer) == 3
    assert torch.equal(encoder.encoder.layer[2].attention.self.query.weight,
                       full.state_dict["encoder.layer.2.attention.self.query.weight"])
    with pytest.raises(HasheeError, match="cannot truncate to 7"):
        load_backbone("minilm", num_layers=7, with_tokenizer=False)


SENTENCES = ["a short one", "this is a much longer sentence with many more tokens in it", "hi",
             "the film was not good , but the actors were great"]
PAIRS = (["a man is playing a guitar .", "hi", "the cat sat on the mat"],
         ["someone plays music on an instrument with six strings .", "hello there", "a cat is sitting"])


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """family -> a tiny random checkpoint in its hub layout (hashee/studies/rehearsal/checkpoints.py), written once."""
    root = tmp_path_factory.mktemp("checkpoints")
    return {family: write_checkpoint(family, root / family) for family in FAMILIES}


def _reference_states(written, batch, layer=None):
    """The transformers encoder's hidden states (last, or after `layer` layers) on `batch`."""
    kwargs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    if written.family in ("bert", "albert", "elasticbert") and "token_type_ids" in batch:
        kwargs["token_type_ids"] = batch["token_type_ids"]
    with torch.no_grad():
        out = written.reference(**kwargs, output_hidden_states=True)
    return out.hidden_states[-1 if layer is None else layer]


def _ours(encoder, batch):
    with torch.no_grad():
        return encoder(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids")).last_hidden_state


def _max_diff(a, b, attention_mask):
    return (a - b)[attention_mask.bool()].abs().max().item()


@pytest.mark.parametrize("family", FAMILIES)
def test_hub_layout_checkpoint_equals_transformers(checkpoints, family):
    """Each family's checkpoint (hub names, heads included, its own tokenizer files) loads with its tokenizer
    and computes what transformers' model of that family computes: padded batches and sentence pairs."""
    written = checkpoints[family]
    backbone = load_backbone(str(written.path))
    assert backbone.config.family == family and backbone.config.num_layers == 3
    encoder = backbone.build_encoder().eval()
    for batch in (backbone.tokenizer(SENTENCES, padding=True, return_tensors="pt"),
                  backbone.tokenizer(*PAIRS, padding=True, return_tensors="pt")):
        assert batch["attention_mask"].sum(1).unique().numel() > 1  # unequal lengths: padding is exercised
        assert _max_diff(_ours(encoder, batch), _reference_states(written, batch), batch["attention_mask"]) < 1e-4


@pytest.mark.parametrize("family", FAMILIES)
def test_truncated_checkpoint_equals_the_first_layers(checkpoints, family):
    written = checkpoints[family]
    two = load_backbone(str(written.path), num_layers=2)
    assert not any(k.startswith("encoder.layer.2.") for k in two.state_dict)
    encoder = two.build_encoder().eval()
    assert len(encoder.encoder.layer) == 2
    batch = two.tokenizer(*PAIRS, padding=True, return_tensors="pt")
    assert _max_diff(_ours(encoder, batch), _reference_states(written, batch, layer=2), batch["attention_mask"]) < 1e-4


@pytest.mark.parametrize("family", ["bert", "albert"])
def test_pooler_equals_transformers(checkpoints, family):
    written = checkpoints[family]
    encoder = load_backbone(str(written.path)).build_encoder().eval()
    batch = load_backbone(str(written.path)).tokenizer(SENTENCES, padding=True, return_tensors="pt")
    with torch.no_grad():
        ours = encoder.pooler(_ours(encoder, batch)[:, 0])
        ref = written.reference(**{k: v for k, v in batch.items()}).pooler_output
    assert (ours - ref).abs().max().item() < 1e-4


def test_albert_one_shared_layer_and_embedding_projection(checkpoints):
    from safetensors.torch import load_file

    written = checkpoints["albert"]
    stored = load_file(str(written.path / "model.safetensors"))
    assert {k.split("albert_layers.")[1].split(".")[0] for k in stored if "albert_layers." in k} == {"0"}
    backbone = load_backbone(str(written.path), with_tokenizer=False)
    assert backbone.config.share_layers and backbone.config.embedding_size == 16 != backbone.config.hidden_size
    encoder = backbone.build_encoder()
    assert encoder.encoder.layer[0] is encoder.encoder.layer[2]  # one set of weights, applied three times
    assert torch.equal(encoder.embeddings.projection.weight, stored["albert.encoder.embedding_hidden_mapping_in.weight"])


def test_roberta_positions_are_offset_and_token_types_ignored(checkpoints):
    written = checkpoints["roberta"]
    backbone = load_backbone(str(written.path))
    c = backbone.config
    assert (c.position_style, c.type_vocab_size, c.pad_token_id) == ("roberta", 1, 1)
    encoder = backbone.build_encoder().eval()
    batch = backbone.tokenizer(SENTENCES, padding=True, return_tensors="pt")
    assert "token_type_ids" not in batch
    # Position ids count real tokens from pad_token_id + 1: the first real token reads row 2.
    assert encoder.embeddings.position_ids(batch["input_ids"])[0, 0].item() == c.pad_token_id + 1
    segments = torch.ones_like(batch["input_ids"])  # what a BERT pair's second segment would pass
    with torch.no_grad():
        with_segments = encoder(batch["input_ids"], batch["attention_mask"], segments).last_hidden_state
    assert torch.equal(with_segments, _ours(encoder, batch))


def test_elasticbert_checkpoint_maps_into_encoder(checkpoints):
    """ElasticBERT is not in transformers: its checkpoint holds a BertModel's weights under ElasticBERT's
    names (the encoder must compute what that BertModel does, checked above) plus one pooler per exit;
    ElasticBERT-nL predicts through exit n's pooler."""
    written = checkpoints["elasticbert"]
    backbone = load_backbone(str(written.path), with_tokenizer=False)
    assert set(backbone.exit_poolers) == {1, 2, 3}
    for n in (3, 2):
        encoder = load_backbone(str(written.path), num_layers=n, with_tokenizer=False).build_encoder()
        assert torch.equal(encoder.pooler.dense.weight, written.exit_poolers[n]["dense.weight"])
        assert torch.equal(encoder.pooler.dense.bias, written.exit_poolers[n]["dense.bias"])
    assert not torch.equal(written.exit_poolers[2]["dense.weight"], written.exit_poolers[3]["dense.weight"])


def test_pytorch_bin_with_tensorflow_layernorm_names(tmp_path, checkpoints):
    """bert-base-uncased's pytorch_model.bin names LayerNorm parameters gamma/beta: they load as weight/bias."""
    from safetensors.torch import load_file

    written = checkpoints["bert"]
    state = load_file(str(written.path / "model.safetensors"))
    renamed = {k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v
               for k, v in state.items()}
    assert any(k.endswith("LayerNorm.gamma") for k in renamed)
    for name in ("config.json", "vocab.txt", "tokenizer_config.json"):
        (tmp_path / name).write_bytes((written.path / name).read_bytes())
    torch.save(renamed, tmp_path / "pytorch_model.bin")
    encoder = load_backbone(str(tmp_path), with_tokenizer=False).build_encoder()
    assert torch.equal(encoder.embeddings.LayerNorm.weight, state["bert.embeddings.LayerNorm.weight"])
    assert torch.equal(encoder.encoder.layer[1].output.LayerNorm.bias, state["bert.encoder.layer.1.output.LayerNorm.bias"])


def test_missing_weights_named(tmp_path):
    write_checkpoint("elasticbert", tmp_path)
    from safetensors.torch import load_file
    state = load_file(str(tmp_path / "model.safetensors"))
    del state["elasticbert.encoder.layer.1.output.dense.weight"]
    save_file(state, str(tmp_path / "model.safetensors"))
    with pytest.raises(HasheeError, match="encoder.layer.1.output.dense.weight"):
        load_backbone(str(tmp_path), with_tokenizer=False).build_encoder()


def test_unreachable_hub_name_is_one_clear_line(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HasheeError) as err:
        load_backbone("fnlp/elasticbert-base-not-cached")
    message = str(err.value)
    assert "fnlp/elasticbert-base-not-cached" in message and "local directory" in message
    assert "\n" not in message


def test_missing_path_and_unknown_family(tmp_path):
    with pytest.raises(HasheeError, match="does not exist"):
        load_backbone(str(tmp_path / "nope"))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(HasheeError, match="valid: bert"):
        load_backbone(str(tmp_path))

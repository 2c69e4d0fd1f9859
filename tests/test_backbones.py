"""One backbone loader: offline default, truncation, ElasticBERT's names mapped, clear errors."""

import json

import pytest
import torch
from safetensors.torch import save_file

from hashee.core.backbones import load_backbone
from hashee.core.errors import HasheeError
from hashee.core.modeling import EncoderConfig, TokenExitEncoder


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


def _write_elasticbert(directory, num_layers=3, hidden=32):
    """A random checkpoint in fastnlp/ElasticBERT's naming: elasticbert.* and one pooler per exit."""
    torch.manual_seed(0)
    config = EncoderConfig(vocab_size=100, hidden_size=hidden, num_layers=num_layers, num_heads=4,
                           intermediate_size=64)
    encoder = TokenExitEncoder(config)
    state = {}
    for name, tensor in encoder.state_dict().items():
        if name.startswith("pooler."):
            continue
        state[f"elasticbert.{name}"] = tensor.clone()
    poolers = {}
    for i in range(num_layers):
        weight, bias = torch.randn(hidden, hidden), torch.randn(hidden)
        state[f"elasticbert.encoder.pooler.{i}.dense.weight"] = weight
        state[f"elasticbert.encoder.pooler.{i}.dense.bias"] = bias
        poolers[i + 1] = weight
    state["classifier.weight"] = torch.randn(2, hidden)  # task heads are dropped
    save_file(state, str(directory / "model.safetensors"))
    (directory / "config.json").write_text(json.dumps({
        "model_type": "elasticbert", "vocab_size": 100, "hidden_size": hidden, "num_hidden_layers": num_layers,
        "num_attention_heads": 4, "intermediate_size": 64, "max_output_layers": num_layers,
        "num_output_layers": num_layers}))
    return encoder, poolers


def test_elasticbert_checkpoint_maps_into_encoder(tmp_path):
    reference, poolers = _write_elasticbert(tmp_path)
    backbone = load_backbone(str(tmp_path), with_tokenizer=False)
    encoder = backbone.build_encoder()
    for name, tensor in reference.state_dict().items():
        if not name.startswith("pooler."):
            assert torch.equal(encoder.state_dict()[name], tensor), name
    assert torch.equal(encoder.pooler.dense.weight, poolers[3])  # ElasticBERT-3L predicts through exit 3
    assert set(backbone.exit_poolers) == {1, 2, 3}
    two = load_backbone(str(tmp_path), num_layers=2, with_tokenizer=False)
    assert torch.equal(two.build_encoder().pooler.dense.weight, poolers[2])


def test_missing_weights_named(tmp_path):
    _write_elasticbert(tmp_path)
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

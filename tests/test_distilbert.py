"""DistilBERT checkpoints (a directory with config.json + weights) load into the BERT-named encoder
and equal transformers' DistilBertModel: padded batches, sentence pairs (token types ignored),
truncation, and task-model checkpoints whose heads are dropped."""

import pytest
import torch
from transformers import DistilBertConfig, DistilBertForSequenceClassification, DistilBertModel

from hashee.core.backbones import load_backbone

SENTENCES = ["a short one", "this is a much longer sentence with many more tokens in it", "hi",
             "the film was not good , but the actors were great"]
PAIRS = (["a man is playing a guitar .", "hi", "the cat sat on the mat"],
         ["someone plays music on an instrument with six strings .", "hello there", "a cat is sitting"])


def _config(**extra):
    return DistilBertConfig(vocab_size=30522, dim=64, n_layers=2, n_heads=4, hidden_dim=128, **extra)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    torch.manual_seed(0)
    hf = DistilBertModel(_config()).eval()
    path = tmp_path_factory.mktemp("distilbert")
    hf.save_pretrained(str(path))
    return hf, path


def _run(encoder, batch, token_type_ids=None, exits=None):
    with torch.no_grad():
        return encoder(batch["input_ids"], batch["attention_mask"], token_type_ids, exits).last_hidden_state


def _hf(hf, batch, layer=None):
    with torch.no_grad():
        out = hf(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                 output_hidden_states=layer is not None)
    return out.last_hidden_state if layer is None else out.hidden_states[layer]


def _max_diff(a, b, attention_mask):
    return (a - b)[attention_mask.bool()].abs().max().item()


def test_config_and_names_mapped(saved):
    _, path = saved
    backbone = load_backbone(str(path), with_tokenizer=False)
    c = backbone.config
    assert (c.family, c.hidden_size, c.num_layers, c.num_heads, c.intermediate_size, c.type_vocab_size) == \
        ("distilbert", 64, 2, 4, 128, 1)
    assert c.layer_norm_eps == 1e-12 and c.hidden_act == "gelu"
    assert "encoder.layer.1.attention.self.query.weight" in backbone.state_dict
    assert torch.equal(backbone.state_dict["embeddings.token_type_embeddings.weight"], torch.zeros(1, 64))
    encoder = backbone.build_encoder()
    assert set(backbone.state_dict) <= set(encoder.state_dict())
    # DistilBERT has no dropout between out_lin and the residual; the FFN output keeps its dropout.
    assert encoder.encoder.layer[0].attention.output.dropout.p == 0.0
    assert encoder.encoder.layer[0].output.dropout.p == 0.1


def test_padded_batch_equals_transformers(saved, minilm):
    hf, path = saved
    encoder = load_backbone(str(path), with_tokenizer=False).build_encoder().eval()
    batch = minilm.tokenizer(SENTENCES, padding=True, return_tensors="pt")
    assert batch["attention_mask"].sum(1).unique().numel() > 1  # unequal lengths
    ref = _hf(hf, batch)
    mask = batch["attention_mask"]
    assert _max_diff(_run(encoder, batch), ref, mask) < 1e-4
    assert _max_diff(_run(encoder, batch, batch["token_type_ids"]), ref, mask) < 1e-4  # zeros, as the loaders pass
    last = torch.full_like(batch["input_ids"], 2)  # every token exits at the last layer
    assert _max_diff(_run(encoder, batch, batch["token_type_ids"], last), ref, mask) < 1e-4


def test_sentence_pairs_ignore_token_types(saved, minilm):
    hf, path = saved
    encoder = load_backbone(str(path), with_tokenizer=False).build_encoder().eval()
    batch = minilm.tokenizer(*PAIRS, padding=True, return_tensors="pt")
    assert int(batch["token_type_ids"].max()) == 1  # a BERT tokenizer marks the second segment
    out = _run(encoder, batch, batch["token_type_ids"])
    assert _max_diff(out, _hf(hf, batch), batch["attention_mask"]) < 1e-4
    assert torch.equal(out, _run(encoder, batch))  # segments make no difference


def test_truncated_to_one_layer(saved, minilm):
    hf, path = saved
    one = load_backbone(str(path), num_layers=1, with_tokenizer=False)
    assert one.config.num_layers == 1 and not any(k.startswith("encoder.layer.1.") for k in one.state_dict)
    encoder = one.build_encoder().eval()
    assert len(encoder.encoder.layer) == 1
    batch = minilm.tokenizer(SENTENCES, padding=True, return_tensors="pt")
    out = _run(encoder, batch, batch["token_type_ids"])
    assert _max_diff(out, _hf(hf, batch, layer=1), batch["attention_mask"]) < 1e-4


def test_task_checkpoint_with_sinusoids_loads_encoder_only(tmp_path, minilm):
    """A DistilBertForSequenceClassification directory: `distilbert.` prefix, pre_classifier/classifier
    dropped, fixed sinusoidal positions loaded as the stored position embedding weight."""
    torch.manual_seed(1)
    hf = DistilBertForSequenceClassification(_config(sinusoidal_pos_embds=True, num_labels=3)).eval()
    hf.save_pretrained(str(tmp_path))
    backbone = load_backbone(str(tmp_path), with_tokenizer=False)
    assert not any("classifier" in k for k in backbone.state_dict)
    encoder = backbone.build_encoder().eval()
    assert torch.equal(encoder.embeddings.position_embeddings.weight,
                       hf.distilbert.embeddings.position_embeddings.weight)
    batch = minilm.tokenizer(SENTENCES, padding=True, return_tensors="pt")
    ref = _hf(hf.distilbert, batch)
    assert _max_diff(_run(encoder, batch, batch["token_type_ids"]), ref, batch["attention_mask"]) < 1e-4

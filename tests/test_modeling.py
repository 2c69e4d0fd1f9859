"""The token-exit encoder: equal to transformers when nothing exits, batch-independent when tokens
exit, and honest about how many tokens each layer processed."""

import pytest
import torch
from transformers import AlbertConfig, AlbertModel, BertModel, RobertaConfig, RobertaModel

from hashee.core.backbones import config_from_hf, map_state_dict
from hashee.core.modeling import TokenExitEncoder, encoder_traces

SENTENCES = ["a short one", "this is a much longer sentence with many more tokens in it", "hi",
             "the film was not good , but the actors were great"]


def _batch(tokenizer):
    return tokenizer(SENTENCES, padding=True, return_tensors="pt")


def _compare_with_hf(hf_model, batch, atol=1e-4):
    config = config_from_hf(hf_model.config.to_dict(), "test")
    state, _ = map_state_dict(hf_model.state_dict(), config)
    encoder = TokenExitEncoder(config).eval()
    from hashee.core.backbones import load_exact

    load_exact(encoder, state, "test")
    hf_model.eval()
    with torch.no_grad():
        ref = hf_model(**batch)
        last_layer = torch.full_like(batch["input_ids"], config.num_layers)  # every token exits last
        out = encoder(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"), last_layer)
        pooled = encoder.pooler(out.last_hidden_state[:, 0])
    real = batch["attention_mask"].bool()
    assert (ref.last_hidden_state - out.last_hidden_state)[real].abs().max() < atol
    assert (ref.pooler_output - pooled).abs().max() < atol


def test_bert_equals_transformers_on_padded_batch(minilm):
    hf = BertModel.from_pretrained(str(__import__("hashee.core.backbones").core.backbones.minilm_path()))
    batch = _batch(minilm.tokenizer)
    assert batch["attention_mask"].sum(1).unique().numel() > 1  # unequal lengths
    _compare_with_hf(hf, batch)


def test_roberta_equals_transformers(minilm):
    torch.manual_seed(0)
    hf = RobertaModel(RobertaConfig(vocab_size=30522, hidden_size=64, num_hidden_layers=3, num_attention_heads=4,
                                    intermediate_size=128, pad_token_id=1))
    batch = _batch(minilm.tokenizer)
    batch["input_ids"] = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, 1)  # RoBERTa pads with 1
    batch = {k: v for k, v in batch.items() if k != "token_type_ids"}
    _compare_with_hf(hf, batch)


def test_albert_shared_layers_equal_transformers(minilm):
    torch.manual_seed(0)
    hf = AlbertModel(AlbertConfig(vocab_size=30522, embedding_size=32, hidden_size=64, num_hidden_layers=3,
                                  num_attention_heads=4, intermediate_size=128))
    _compare_with_hf(hf, _batch(minilm.tokenizer))


@pytest.fixture(scope="module")
def encoder(minilm):
    return minilm.build_encoder().eval()


def test_early_exit_batch_equals_each_instance_alone(encoder, minilm):
    batch = _batch(minilm.tokenizer)
    generator = torch.Generator().manual_seed(0)
    exits = torch.randint(1, 7, batch["input_ids"].shape, generator=generator)
    exits[:, 0] = 6  # [CLS] runs to the last layer
    with torch.no_grad():
        together = encoder(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"], exits)
        for i in range(len(SENTENCES)):
            n = int(batch["attention_mask"][i].sum())
            alone = encoder(batch["input_ids"][i:i + 1, :n], batch["attention_mask"][i:i + 1, :n],
                            batch["token_type_ids"][i:i + 1, :n], exits[i:i + 1, :n])
            assert (together.last_hidden_state[i, :n] - alone.last_hidden_state[0]).abs().max() < 1e-5
            assert together.active_counts[i].tolist() == alone.active_counts[0].tolist()


def test_inference_updates_states_in_place_with_the_same_result(encoder, minilm):
    """Without autograd each layer writes its active tokens into its input (no copy of every state);
    with autograd it must not (backward needs the input). Both give the same states, batched and alone."""
    batch = _batch(minilm.tokenizer)
    exits = torch.randint(1, 7, batch["input_ids"].shape, generator=torch.Generator().manual_seed(1))
    for rows in (slice(None), slice(1, 2)):
        args = (batch["input_ids"][rows], batch["attention_mask"][rows], batch["token_type_ids"][rows], exits[rows])
        with torch.inference_mode():
            in_place = encoder(*args).last_hidden_state
        with_autograd = encoder(*args).last_hidden_state
        with_autograd.sum().backward()  # fails if a layer overwrote a state that backward needs
        encoder.zero_grad(set_to_none=True)
        assert (in_place - with_autograd.detach()).abs().max() < 1e-5


def test_exited_tokens_are_frozen_and_counts_recorded(encoder, minilm):
    batch = minilm.tokenizer(["one two three four five"], return_tensors="pt")
    exits = torch.tensor([[6, 1, 2, 3, 4, 5, 6]])
    with torch.no_grad():
        out = encoder(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"], exits,
                      output_layer_states=True)
    # token 1 exits at layer 1: its state never changes after layer 1
    for state in out.layer_states[1:]:
        assert torch.equal(state[0, 1], out.layer_states[0][0, 1])
    # token 3 exits at layer 3: it changes up to layer 3, not after
    assert not torch.equal(out.layer_states[2][0, 3], out.layer_states[1][0, 3])
    assert torch.equal(out.layer_states[5][0, 3], out.layer_states[2][0, 3])
    assert out.active_counts.tolist() == [[7, 6, 5, 4, 3, 2]]
    traces = encoder_traces(batch["attention_mask"], out.active_counts, 384)
    assert [c.name for c in traces[0]][:3] == ["emb", "layer_1", "layer_2"]
    assert traces[0][2].shape == (6, 7, 384)


def test_a_layer_with_no_active_token_leaves_the_states_as_they_are(encoder, minilm):
    batch = _batch(minilm.tokenizer)
    exits = torch.full(batch["input_ids"].shape, 2)  # every token, [CLS] included, exits at layer 2
    with torch.no_grad():
        out = encoder(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"], exits,
                      output_layer_states=True)
    assert torch.equal(out.last_hidden_state, out.layer_states[1])
    assert out.active_counts[:, 2:].sum() == 0


def test_padding_is_never_active(encoder, minilm):
    batch = _batch(minilm.tokenizer)
    with torch.no_grad():
        out = encoder(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
    lengths = batch["attention_mask"].sum(1)
    assert torch.equal(out.active_counts, lengths[:, None].expand(-1, 6))


def test_active_tokens_change_the_output(encoder, minilm):
    """Exiting early must matter: otherwise the equality tests above would pass for an encoder that ignores exits."""
    batch = _batch(minilm.tokenizer)
    with torch.no_grad():
        full = encoder(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
        early = encoder(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"],
                        torch.where(torch.arange(batch["input_ids"].shape[1]) == 0, 6, 1).expand_as(batch["input_ids"]))
    assert (full.last_hidden_state[:, 0] - early.last_hidden_state[:, 0]).abs().max() > 1e-3


def test_sentence_transformers_checkpoints_pool_the_mean_and_bert_ones_cls(minilm, tmp_path):
    import json

    from hashee.core.backbones import checkpoint_pooling
    from hashee.core.errors import HasheeError

    assert minilm.config.pooling == "mean"  # all-MiniLM-L6-v2's 1_Pooling/config.json: mean tokens
    assert checkpoint_pooling(tmp_path) == "cls"  # no modules.json: a BERT-family checkpoint
    (tmp_path / "modules.json").write_text(json.dumps([{"path": "pool", "type": "sentence_transformers.models.Pooling"}]))
    (tmp_path / "pool").mkdir()
    (tmp_path / "pool" / "config.json").write_text(json.dumps({"pooling_mode_max_tokens": True}))
    with pytest.raises(HasheeError, match=r"pool/config.json: only mean or \[CLS\] pooling.*pooling_mode_max_tokens"):
        checkpoint_pooling(tmp_path)


def test_mean_pooled_head_reads_real_tokens_only(minilm):
    """The classifier's input is the mean of the real tokens' last states: padding changes nothing."""
    from hashee.core.modeling import SequenceClassifier

    config = minilm.config
    model = SequenceClassifier(config, 3).eval()
    model.bert.load_state_dict(minilm.build_encoder().state_dict())
    batch = _batch(minilm.tokenizer)
    with torch.no_grad():
        logits, out = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
        for i in range(len(SENTENCES)):
            alone = minilm.tokenizer([SENTENCES[i]], return_tensors="pt")
            single, _ = model(alone["input_ids"], alone["attention_mask"], alone["token_type_ids"])
            assert torch.allclose(single[0], logits[i], atol=1e-5)
        real = batch["attention_mask"][0].bool()
        by_hand = model.classifier(model.bert.pooler(out.last_hidden_state[0][real].mean(dim=0, keepdim=True)))
    assert torch.allclose(by_hand[0], logits[0], atol=1e-5)
    assert not torch.allclose(model.classifier(model.bert.pooler(out.last_hidden_state[:1, 0]))[0], logits[0], atol=1e-3)

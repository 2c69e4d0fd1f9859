"""Seq2seq HashEE models: the BART/CPT encoder mappings, generation against plain transformers,
DAT's decoding and its cost. Small random configs; the offline backbone once."""

from __future__ import annotations

import json

import torch
from safetensors.torch import save_file
from transformers import BartConfig, BartForConditionalGeneration, BertConfig, BertModel
from transformers.modeling_outputs import BaseModelOutput

from hashee.studies.summarization.modeling import (
    Seq2SeqBackbone,
    Seq2SeqModel,
    _bart_config,
    _decoder_state,
    dat_generate,
    load_into,
    load_seq2seq_backbone,
)
from hashee.studies.summarization.weights import bart_encoder_config, map_bart_encoder

SMALL = dict(vocab_size=60, d_model=32, encoder_layers=3, decoder_layers=2, encoder_attention_heads=4,
             decoder_attention_heads=4, encoder_ffn_dim=48, decoder_ffn_dim=48, max_position_embeddings=64,
             pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2, forced_eos_token_id=2,
             dropout=0.0, attention_dropout=0.0, activation_dropout=0.0)
DECODING = dict(num_beams=1, do_sample=False, max_length=12, min_length=8, no_repeat_ngram_size=2)


def plain_bart(seed=0, **overrides) -> BartForConditionalGeneration:
    torch.manual_seed(seed)
    model = BartForConditionalGeneration(BartConfig(**{**SMALL, **overrides})).eval()
    with torch.no_grad():  # non-trivial LayerNorms and biases, so a wrong mapping shows
        for name, p in model.named_parameters():
            if "layer_norm" in name or "layernorm" in name or name.endswith("bias"):
                p.add_(torch.randn_like(p) * 0.1)
    return model


def ours_from_plain(plain: BartForConditionalGeneration, dat: bool = False) -> Seq2SeqModel:
    raw = plain.config.to_dict()
    enc_config = bart_encoder_config(raw)
    state = plain.state_dict()
    backbone = Seq2SeqBackbone("random", "bart", enc_config, _bart_config(raw, raw["decoder_layers"]),
                               {**{f"bert.{k}": v for k, v in map_bart_encoder(state, enc_config).items()},
                                **{f"bart.{k}": v for k, v in _decoder_state(state, "", raw["decoder_layers"]).items()}},
                               None)
    model = Seq2SeqModel(enc_config, backbone.decoder_config, dat_exits=dat)
    load_into(model, backbone)
    return model.eval()


def batch(seed=1):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, SMALL["vocab_size"], (3, 9), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    mask[2, 4:] = 0
    ids = ids.masked_fill(mask == 0, SMALL["pad_token_id"])
    return ids, mask


def test_bart_mapping_equals_bart_encoder():
    plain = plain_bart()
    ours = ours_from_plain(plain)
    ids, mask = batch()
    expected = plain.model.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
    got = ours.encode(ids, mask).last_hidden_state
    real = mask.bool()
    torch.testing.assert_close(got[real], expected[real], atol=1e-5, rtol=1e-4)
    # All tokens at the last layer through the exit path too (exit_layers given, all = L).
    exits = torch.full_like(ids, ours.bert.num_layers)
    torch.testing.assert_close(ours.encode(ids, mask, exits).last_hidden_state[real], expected[real],
                               atol=1e-5, rtol=1e-4)


def test_greedy_generation_identical_to_plain_transformers():
    plain = plain_bart(seed=3)
    ours = ours_from_plain(plain)
    ids, mask = batch(seed=4)
    expected = plain.generate(input_ids=ids, attention_mask=mask, **DECODING)
    exits = torch.full_like(ids, ours.bert.num_layers)
    enc = ours.encode(ids, mask, exits).last_hidden_state
    got = ours.bart.generate(encoder_outputs=BaseModelOutput(last_hidden_state=enc), attention_mask=mask, **DECODING)
    assert torch.equal(got, expected)
    assert got.shape[1] > 3  # the comparison covers real decoding steps, not an immediate end


def test_token_exits_change_the_encoder_output():
    ours = ours_from_plain(plain_bart())
    ids, mask = batch()
    exits = torch.ones_like(ids)
    exits[:, 0] = ours.bert.num_layers  # as a special token (<s>, [CLS]) would
    full = ours.encode(ids, mask).last_hidden_state
    early = ours.encode(ids, mask, exits)
    assert not torch.allclose(full[mask.bool()], early.last_hidden_state[mask.bool()])
    assert early.active_counts[:, 1:].tolist() == [[1, 1]] * 3


def test_cpt_path_equals_bert_encoder_plus_bart_decoder(tmp_path):
    """CPT reference (modeling_cpt.py): BertModel(S-Enc + U-Dec) run with token_type_ids=1, G-Dec = a BART
    decoder reading the S-Enc output (hidden_states[-dec_layers - 1])."""
    torch.manual_seed(5)
    senc, udec = 2, 1
    bert = BertModel(BertConfig(vocab_size=60, hidden_size=32, num_hidden_layers=senc + udec, num_attention_heads=4,
                                intermediate_size=48, max_position_embeddings=64, hidden_dropout_prob=0.0,
                                attention_probs_dropout_prob=0.0), add_pooling_layer=False).eval()
    decoder_model = plain_bart(seed=6, decoder_layers=udec, pad_token_id=0, bos_token_id=101 % 60,
                               eos_token_id=3, decoder_start_token_id=3, forced_eos_token_id=3)
    ids, mask = batch(seed=7)
    ids = ids.masked_fill(mask == 0, 0)
    with torch.no_grad():
        out = bert(input_ids=ids, attention_mask=mask, token_type_ids=torch.ones_like(ids), output_hidden_states=True)
    senc_output = out.hidden_states[-udec - 1]
    # A CPT checkpoint directory as fnlp/CPT writes one: model.encoder = the BertModel, model.decoder = G-Dec.
    cpt_state = {f"model.encoder.{k}": v.clone() for k, v in bert.state_dict().items()}
    cpt_state.update({k: v.clone() for k, v in decoder_model.state_dict().items()
                      if k.startswith("model.decoder.") and "embed_tokens" not in k})
    cpt_state["lm_head.weight"] = bert.state_dict()["embeddings.word_embeddings.weight"].clone()
    cpt_state["final_logits_bias"] = decoder_model.final_logits_bias.clone()
    with torch.no_grad():  # G-Dec shares the BERT word embeddings
        decoder_model.model.shared.weight.copy_(bert.embeddings.word_embeddings.weight)
    expected = decoder_model.generate(encoder_outputs=BaseModelOutput(last_hidden_state=senc_output),
                                      attention_mask=mask, **DECODING)
    raw = {**decoder_model.config.to_dict(), "model_type": "cpt", "encoder_layers": senc + udec,
           "decoder_layers": udec}
    (tmp_path / "config.json").write_text(json.dumps(raw))
    save_file(cpt_state, str(tmp_path / "model.safetensors"))
    backbone = load_seq2seq_backbone(str(tmp_path), with_tokenizer=False)
    assert (backbone.family, backbone.encoder_config.num_layers) == ("cpt", senc)  # S-Enc only, not U-Dec
    model = Seq2SeqModel(backbone.encoder_config, backbone.decoder_config)
    load_into(model, backbone)
    model.eval()
    got_states = model.encode(ids, mask).last_hidden_state
    real = mask.bool()
    torch.testing.assert_close(got_states[real], senc_output[real], atol=1e-5, rtol=1e-4)
    got = model.bart.generate(encoder_outputs=BaseModelOutput(last_hidden_state=got_states),
                              attention_mask=mask, **DECODING)
    assert torch.equal(got, expected)
    assert got.shape[1] > 3


def test_dat_without_early_exits_is_plain_greedy_decoding():
    plain = plain_bart(seed=8)
    ours = ours_from_plain(plain, dat=True)
    ids, mask = batch(seed=9)
    expected = plain.generate(input_ids=ids, attention_mask=mask, **DECODING)
    enc = ours.encode(ids, mask).last_hidden_state
    sequences, exits = dat_generate(ours, enc, mask, threshold=1.01, max_length=DECODING["max_length"],
                                   min_length=DECODING["min_length"], no_repeat_ngram_size=2)
    assert torch.equal(sequences, expected)
    generated = sequences[:, 1:] != plain.config.pad_token_id
    assert bool((exits[generated] == ours.bart.config.decoder_layers).all())


def test_dat_low_threshold_exits_at_the_first_layer():
    ours = ours_from_plain(plain_bart(seed=8), dat=True)
    ids, mask = batch(seed=9)
    enc = ours.encode(ids, mask).last_hidden_state
    sequences, exits = dat_generate(ours, enc, mask, threshold=0.0, max_length=8)
    assert exits.max() == 1 and sequences.shape[0] == 3


def test_offline_backbone_encoder_equals_its_bart_encoder():
    from hashee.studies.summarization.modeling import OFFLINE_SEQ2SEQ, offline_bart_state

    raw, state, tokenizer = offline_bart_state()
    plain = BartForConditionalGeneration(BartConfig(**raw)).eval()
    missing, unexpected = plain.load_state_dict(state, strict=False)
    assert not unexpected and set(missing) <= {"model.encoder.embed_tokens.weight", "model.decoder.embed_tokens.weight"}
    backbone = load_seq2seq_backbone(OFFLINE_SEQ2SEQ)
    model = Seq2SeqModel(backbone.encoder_config, backbone.decoder_config)
    load_into(model, backbone)
    model.eval()
    enc = tokenizer(["the mayor opened a new bridge near the river .", "the team won ."], padding=True,
                    return_tensors="pt")
    expected = plain.model.encoder(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
    got = model.encode(enc["input_ids"], enc["attention_mask"]).last_hidden_state
    real = enc["attention_mask"].bool()
    torch.testing.assert_close(got[real], expected[real], atol=1e-4, rtol=1e-4)
    # ... and the MiniLM encoder itself (token type 0 folded into the positions), up to LayerNorm eps.
    from hashee.core.backbones import load_backbone

    minilm = load_backbone("minilm", with_tokenizer=False).build_encoder().eval()
    reference = minilm(enc["input_ids"], enc["attention_mask"]).last_hidden_state
    torch.testing.assert_close(got[real], reference[real], atol=1e-3, rtol=1e-3)


def test_decoder_step_flops_formula_equals_fvcore():
    from hashee.measure.flops import count_module_flops
    from hashee.studies.summarization.cost import Dims, FlopsDecoderStep, decoder_step_flops

    model = ours_from_plain(plain_bart())
    dims = Dims.of(model)
    for t, source_length in ((1, 5), (4, 9), (7, 3)):
        counted = count_module_flops(FlopsDecoderStep(model.decoder_layers[0]),
                                     (torch.zeros(t, source_length, dims.hidden),))
        assert counted == decoder_step_flops(dims, t, source_length), (t, source_length)


def test_generation_costs_count_what_ran():
    from hashee.studies.summarization.cost import Dims, decoder_flops, encoder_flops, generation_costs
    from hashee.studies.summarization.methods import Generated

    model = ours_from_plain(plain_bart(), dat=True)
    dims = Dims.of(model)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    counts = torch.tensor([[4, 4, 4], [2, 1, 1]])
    sequences = torch.tensor([[2, 7, 8, 2], [2, 9, 2, 1]])  # start, tokens..., pad (1) after the end
    full = generation_costs(model, mask, Generated(sequences, counts), pad_token_id=1)
    assert [row[2] for row in full] == [3, 2]
    assert full[1][0] == encoder_flops(dims, 2, [2, 1, 1]) < encoder_flops(dims, 2, [2, 2, 2])
    exits = torch.tensor([[1, 2, 1], [1, 1, 0]])
    dat = generation_costs(model, mask, Generated(sequences, counts, exits), pad_token_id=1)
    assert dat[0][1] == decoder_flops(dims, 4, 3, [1, 2, 1])
    # exiting at layer 1 skips a layer but pays for an exit classifier over the vocabulary
    one_layer = decoder_flops(dims, 4, 1, [1]) - decoder_flops(dims, 4, 0, [])
    assert one_layer < decoder_flops(dims, 4, 1) - decoder_flops(dims, 4, 0)


def test_sources_longer_than_the_limit_are_truncated_and_counted():
    from types import SimpleNamespace

    from hashee.studies.summarization.run import encode_split

    class Tok:
        def __call__(self, texts, verbose=True):
            return {"input_ids": [[101, *range(1000, 1000 + len(t.split())), 102] for t in texts]}

    examples = [SimpleNamespace(source="a b c d e f", target="x y", where="f.csv:2"),
                SimpleNamespace(source="a b", target="x y z w v", where="f.csv:3")]
    features, truncated, first = encode_split(examples, Tok(), max_source=5, max_target=3, decoder_start=101)
    assert (truncated, first) == (1, "f.csv:2")
    assert features[0]["input_ids"] == [101, 1000, 1001, 1002, 102]  # the closing token kept
    assert features[1]["labels"].tolist() == [1000, 1001, 102]  # start token dropped, end kept


def test_bart_checkpoint_directory_loads_whole_and_truncated(tmp_path):
    """The hub path: a save_pretrained BART directory (as facebook/bart-*), whole and as BART-6L-style truncation."""
    plain = plain_bart(seed=11)
    plain.save_pretrained(tmp_path)
    ids, mask = batch(seed=12)
    backbone = load_seq2seq_backbone(str(tmp_path), with_tokenizer=False)
    model = Seq2SeqModel(backbone.encoder_config, backbone.decoder_config)
    load_into(model, backbone)
    model.eval()
    enc = model.encode(ids, mask).last_hidden_state
    got = model.bart.generate(encoder_outputs=BaseModelOutput(last_hidden_state=enc), attention_mask=mask, **DECODING)
    assert torch.equal(got, plain.generate(input_ids=ids, attention_mask=mask, **DECODING))
    short = load_seq2seq_backbone(str(tmp_path), enc_layers=2, dec_layers=1, with_tokenizer=False)
    truncated = Seq2SeqModel(short.encoder_config, short.decoder_config)
    load_into(truncated, short)
    assert truncated.bert.num_layers == 2 and len(truncated.decoder_layers) == 1
    torch.testing.assert_close(truncated.decoder_layers[0].fc1.weight, plain.model.decoder.layers[0].fc1.weight)


def test_dat_trains_through_the_one_trainer_and_its_exits_learn(tmp_path):
    from hashee.core.training import TrainParams, train
    from hashee.studies.summarization.methods import SUMM_METHODS

    plain = plain_bart(seed=13)
    method = SUMM_METHODS.get("dat", "threshold=0.5")
    model = ours_from_plain(plain, dat=True)
    ids, mask = batch(seed=14)
    labels = torch.tensor([[5, 6, 7, 2], [8, 9, 2, -100], [10, 2, -100, -100]])
    features = [{"input_ids": ids[i][mask[i].bool()].tolist(), "labels": labels[i], "index": i} for i in range(3)]
    collated = {"input_ids": ids, "attention_mask": mask, "labels": labels}
    before = float(method.loss(model, collated))
    params = TrainParams(epochs=8, lr=3e-3, batch_size=3, warmup=0.0, checkpoint_every=0, seed=1)
    result = train(method, model, features, features, params, tmp_path / "work", SMALL["pad_token_id"],
                   dev_score=lambda m: -float(method.loss(m, collated)), progress=False)
    assert -result.best_dev < before  # the mean over both exits' losses went down
    assert not torch.equal(model.exit_norms[0].weight, torch.ones_like(model.exit_norms[0].weight))  # exit 1 trained


def test_summarization_methods_share_the_method_base_and_take_their_hash_through_prepare(tmp_path):
    """One settings base (hashee.core.methods.Method): unknown keys are an error and "all" means every
    layer, as for the ELUE methods; the hash reaches HashEE through its `prepare` hook, and the class
    fact `needs_fitted_hash` says which method needs one."""
    from types import SimpleNamespace

    import pytest

    from hashee.core.errors import HasheeError
    from hashee.core.hashing import fit_hash, vocab_fingerprint
    from hashee.core.methods import Method, TrainingInputs
    from hashee.studies.summarization.methods import SUMM_METHODS

    assert all(issubclass(cls, Method) for cls in SUMM_METHODS.classes().values())
    assert [name for name, cls in SUMM_METHODS.classes().items() if cls.needs_fitted_hash] == ["hashee"]
    with pytest.raises(HasheeError, match=r"^method truncated: unknown setting key\(s\) layers; valid: enc_layers, "):
        SUMM_METHODS.get("truncated", "layers=2")
    truncated = SUMM_METHODS.get("truncated", "enc_layers=all,dec_layers=1")
    assert (truncated.enc_layers, truncated.dec_layers, truncated.setting_text()) == (None, 1, "enc_layers=all,dec_layers=1")

    model = ours_from_plain(plain_bart(seed=31))
    tokenizer = SimpleNamespace(get_vocab=lambda: {f"t{i}": i for i in range(SMALL["vocab_size"])})
    backbone = SimpleNamespace(tokenizer=tokenizer, encoder_config=model.bert.config)
    token_hash = fit_hash("frequency", [[5, 6, 7, 5]], [], vocab_size=SMALL["vocab_size"],
                          num_layers=model.bert.num_layers, num_buckets=2, special_ids=(0, 1, 2), seed=1,
                          fingerprint=vocab_fingerprint(tokenizer))
    token_hash.save(tmp_path / "hash.pt")
    hashee = SUMM_METHODS.get("hashee", "hash=frequency,buckets=2")
    with pytest.raises(HasheeError, match="summarization method hashee needs a hash file"):
        hashee.prepare(model, backbone, None, TrainingInputs(data_dir="d", seed=1, max_length=9))
    hashee.prepare(model, backbone, None, TrainingInputs(data_dir="d", seed=1, max_length=9,
                                                         hash_file=str(tmp_path / "hash.pt")))
    ids, _ = batch()
    assert torch.equal(hashee.exit_layers(model, ids), token_hash.assign(ids))
    with pytest.raises(HasheeError, match="method full uses no hash"):
        SUMM_METHODS.get("full").prepare(model, backbone, None, TrainingInputs(data_dir="d", seed=1, max_length=9,
                                                                               hash_file=str(tmp_path / "hash.pt")))

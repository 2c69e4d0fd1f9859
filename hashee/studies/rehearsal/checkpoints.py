"""Tiny random checkpoints in each backbone family's hub layout, built offline with transformers' own
config and model classes and `save_pretrained`: config.json, the weights under the names the hub's
pre-training checkpoints use (heads included, which the loader drops), and the tokenizer files. The
rehearsal (config/rehearsal.yaml) writes one for every hub model the paper run names
(`write_hub_checkpoint`: the family and depth from the hub name), so that the very loading code of the
paper run reads them; the unit tests write them per family (`write_checkpoint`).

- bert: BertForPreTraining (`bert.*`, `cls.*`), WordPiece vocab.txt.
- roberta: RobertaForMaskedLM (`roberta.*`, `lm_head.*`, no pooler), byte-level BPE vocab.json + merges.txt,
  one token type, positions offset by pad_token_id + 1.
- albert: AlbertForPreTraining (`albert.*` with one shared layer under albert_layer_groups.0.albert_layers.0,
  the embedding projection encoder.embedding_hidden_mapping_in, `pooler.weight`), a Unigram tokenizer.
- distilbert: DistilBertForMaskedLM (`distilbert.transformer.layer.*`, vocab_* heads), vocab.txt.
- elasticbert (not in transformers): a BertModel's weights under fastnlp/ElasticBERT's names
  (`elasticbert.*`, one pooler per exit `elasticbert.encoder.pooler.<i>.dense.*`), pytorch_model.bin and a
  config.json with model_type elasticbert, vocab.txt.

- bart: BartForConditionalGeneration (`model.*`, `lm_head`), a byte-level BPE as facebook/bart-*; with
  `chinese`, BERT's WordPiece vocab.txt and tokenizer_class BertTokenizer, as fnlp/bart-*-chinese.
- cpt (not in transformers): fnlp/CPT's layout: `model.encoder.*` a BertModel of S-Enc + U-Dec layers,
  `model.decoder.*` a BART decoder (G-Dec) without its own embeddings, `lm_head`, `final_logits_bias`;
  config.json with model_type cpt, vocab.txt and tokenizer_class BertTokenizer.

`write_checkpoint(family, directory)` returns what the test compares against: the transformers model
the checkpoint's encoder is (for elasticbert, a BertModel holding the same weights) and, for
elasticbert, the per-exit pooler weights.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from hashee.core.errors import HasheeError

FAMILIES = ("bert", "roberta", "albert", "elasticbert", "distilbert")  # encoders (hashee.core.backbones)
SEQ2SEQ_FAMILIES = ("bart", "cpt")  # summarization (hashee.studies.summarization.modeling)
HIDDEN, HEADS, FFN, POSITIONS = 32, 4, 64, 128
_CORPUS_WORDS = 4000  # words of the BERT vocabulary a BPE / Unigram tokenizer is trained on


@dataclass
class Written:
    family: str
    path: Path
    reference: torch.nn.Module  # the transformers encoder whose outputs the loaded encoder must equal
    exit_poolers: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)  # elasticbert only


def _bert_vocab() -> Path:
    from hashee.core.backbones import minilm_path

    return minilm_path() / "vocab.txt"


def _corpus() -> list[str]:
    words = [w for w in _bert_vocab().read_text(encoding="utf-8").split("\n")
             if w.isalpha() and w.isascii()][:_CORPUS_WORDS]
    return [" ".join(words[i:i + 12]) for i in range(0, len(words), 12)]


def _wordpiece(directory: Path, tokenizer_config: dict):
    """vocab.txt + tokenizer_config.json, the files bert-base-uncased's tokenizer loads from."""
    from transformers import BertTokenizer

    vocab = _bert_vocab().read_text(encoding="utf-8").rstrip("\n").split("\n")
    if tokenizer_config.get("do_lower_case") is False:  # a cased vocabulary: capitalised words too (as bert-base-cased)
        known = set(vocab)
        vocab += [w.capitalize() for w in vocab if w.isalpha() and w.isascii() and w.capitalize() not in known]
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    (directory / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True, **tokenizer_config}))
    return BertTokenizer.from_pretrained(str(directory))


def _roberta_tokenizer(directory: Path):
    """vocab.json + merges.txt of a byte-level BPE, as roberta-base has them."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaTokenizer

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(_corpus(), vocab_size=600, min_frequency=1,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"], show_progress=False)
    bpe.save_model(str(directory))
    return RobertaTokenizer.from_pretrained(str(directory))


def _albert_tokenizer(directory: Path):
    from tokenizers import SentencePieceUnigramTokenizer
    from transformers import AlbertTokenizerFast

    unigram = SentencePieceUnigramTokenizer()
    unigram.train_from_iterator(_corpus(), vocab_size=600, special_tokens=["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"],
                                unk_token="<unk>", show_progress=False)
    tokenizer = AlbertTokenizerFast(tokenizer_object=unigram, pad_token="<pad>", unk_token="<unk>",
                                    cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]", do_lower_case=True)
    tokenizer.save_pretrained(str(directory))
    return tokenizer


def write_checkpoint(family: str, directory, num_layers: int = 3, seed: int = 0, *,
                     safetensors: bool = True, cased: bool = False, chinese: bool = False,
                     decoder_layers: int | None = None, positions: int = POSITIONS) -> Written:
    """A tiny random `family` checkpoint in `directory` (created); see the module docstring. `cased`:
    a WordPiece tokenizer that keeps case (bert-base-cased); `decoder_layers`: bart's and cpt's (default
    `num_layers`; cpt's `num_layers` counts S-Enc + U-Dec, as its encoder_layers); `positions`: the longest input."""
    import transformers as tf

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    sizes = {"hidden_size": HIDDEN, "num_hidden_layers": num_layers, "num_attention_heads": HEADS,
             "intermediate_size": FFN, "max_position_embeddings": positions}
    save = {"safe_serialization": safetensors}
    lower = {"do_lower_case": not cased}
    if family in ("bart", "cpt"):
        return _write_seq2seq(family, directory, num_layers, decoder_layers or num_layers, save, chinese, positions)
    if family == "bert":
        tokenizer = _wordpiece(directory, lower)
        model = tf.BertForPreTraining(tf.BertConfig(vocab_size=len(tokenizer), **sizes)).eval()
        model.save_pretrained(str(directory), **save)
        return Written(family, directory, model.bert)
    if family == "roberta":
        tokenizer = _roberta_tokenizer(directory)
        config = tf.RobertaConfig(vocab_size=len(tokenizer), type_vocab_size=1, pad_token_id=tokenizer.pad_token_id,
                                  bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                                  **{**sizes, "max_position_embeddings": positions + 2})  # as roberta-base: 512 + 2
        model = tf.RobertaForMaskedLM(config).eval()
        model.save_pretrained(str(directory), **save)
        return Written(family, directory, model.roberta)
    if family == "albert":
        tokenizer = _albert_tokenizer(directory)
        config = tf.AlbertConfig(vocab_size=len(tokenizer), embedding_size=HIDDEN // 2, pad_token_id=tokenizer.pad_token_id,
                                 **sizes)
        model = tf.AlbertForPreTraining(config).eval()
        model.save_pretrained(str(directory), **save)
        return Written(family, directory, model.albert)
    if family == "distilbert":
        tokenizer = _wordpiece(directory, {})
        config = tf.DistilBertConfig(vocab_size=len(tokenizer), dim=HIDDEN, n_layers=num_layers, n_heads=HEADS,
                                     hidden_dim=FFN, max_position_embeddings=positions)
        model = tf.DistilBertForMaskedLM(config).eval()
        model.save_pretrained(str(directory), **save)
        return Written(family, directory, model.distilbert)
    if family == "elasticbert":
        tokenizer = _wordpiece(directory, {"tokenizer_class": "BertTokenizer"})  # model_type unknown to transformers
        bert = tf.BertModel(tf.BertConfig(vocab_size=len(tokenizer), **sizes)).eval()
        state = {f"elasticbert.{name}": tensor.clone() for name, tensor in bert.state_dict().items()
                 if not name.startswith("pooler.") and not name.endswith("position_ids")}
        poolers = {}
        for i in range(num_layers):
            dense = torch.nn.Linear(HIDDEN, HIDDEN)
            poolers[i + 1] = {"dense.weight": dense.weight.detach().clone(), "dense.bias": dense.bias.detach().clone()}
            for key, tensor in poolers[i + 1].items():
                state[f"elasticbert.encoder.pooler.{i}.{key}"] = tensor
        state["classifier.weight"] = torch.randn(2, HIDDEN)  # a task head, dropped by the loader
        if safetensors:
            from safetensors.torch import save_file

            save_file(state, str(directory / "model.safetensors"))
        else:
            torch.save(state, directory / "pytorch_model.bin")
        config = {"architectures": ["ElasticBertForPreTraining"], "model_type": "elasticbert",
                  "vocab_size": len(tokenizer), "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
                  "attention_probs_dropout_prob": 0.1, "type_vocab_size": 2, "initializer_range": 0.02,
                  "layer_norm_eps": 1e-12, "pad_token_id": 0, "max_output_layers": num_layers,
                  "num_output_layers": num_layers, **sizes}
        (directory / "config.json").write_text(json.dumps(config, indent=2))
        return Written(family, directory, bert, poolers)
    raise HasheeError(f"unknown checkpoint family {family!r}; valid: {', '.join(FAMILIES + SEQ2SEQ_FAMILIES)}")


def _write_seq2seq(family: str, directory: Path, enc_layers: int, dec_layers: int, save: dict,
                   chinese: bool, positions: int) -> Written:
    import transformers as tf

    if family == "bart" and not chinese:
        tokenizer = _roberta_tokenizer(directory)  # BART's tokenizer is RoBERTa's byte-level BPE
    else:  # fnlp's Chinese BART and CPT: BERT's WordPiece
        tokenizer = _wordpiece(directory, {"tokenizer_class": "BertTokenizer"})
    special = {"pad_token_id": tokenizer.pad_token_id, "bos_token_id": tokenizer.cls_token_id,
               "eos_token_id": tokenizer.sep_token_id, "decoder_start_token_id": tokenizer.sep_token_id,
               "forced_eos_token_id": tokenizer.sep_token_id}
    if family == "bart" and not chinese:
        special = {"pad_token_id": tokenizer.pad_token_id, "bos_token_id": tokenizer.bos_token_id,
                   "eos_token_id": tokenizer.eos_token_id, "decoder_start_token_id": tokenizer.eos_token_id,
                   "forced_eos_token_id": tokenizer.eos_token_id}
    config = tf.BartConfig(vocab_size=len(tokenizer), d_model=HIDDEN, encoder_layers=enc_layers,
                           decoder_layers=dec_layers, encoder_attention_heads=HEADS, decoder_attention_heads=HEADS,
                           encoder_ffn_dim=FFN, decoder_ffn_dim=FFN, max_position_embeddings=positions, **special)
    if family == "bart":
        model = tf.BartForConditionalGeneration(config).eval()
        model.save_pretrained(str(directory), **save)
        return Written(family, directory, model.model.encoder)
    # CPT: a BertModel holds S-Enc + U-Dec (enc_layers in all); G-Dec is a BART decoder of dec_layers.
    bert = tf.BertModel(tf.BertConfig(vocab_size=len(tokenizer), hidden_size=HIDDEN, num_hidden_layers=enc_layers,
                                      num_attention_heads=HEADS, intermediate_size=FFN,
                                      max_position_embeddings=positions), add_pooling_layer=False).eval()
    decoder = tf.BartForConditionalGeneration(config).eval()
    state = {f"model.encoder.{k}": v.clone() for k, v in bert.state_dict().items() if not k.endswith("position_ids")}
    state.update({k: v.clone() for k, v in decoder.state_dict().items()
                  if k.startswith("model.decoder.") and "embed_tokens" not in k})
    state["lm_head.weight"] = bert.state_dict()["embeddings.word_embeddings.weight"].clone()
    state["final_logits_bias"] = decoder.final_logits_bias.clone()
    from safetensors.torch import save_file

    if save["safe_serialization"]:
        save_file(state, str(directory / "model.safetensors"))
    else:
        torch.save(state, directory / "pytorch_model.bin")
    raw = {**config.to_dict(), "model_type": "cpt", "architectures": ["CPTForConditionalGeneration"]}
    (directory / "config.json").write_text(json.dumps(raw, indent=2))
    return Written(family, directory, bert)


# Hub name -> (family, layers, decoder layers, positions) as the hub's config.json has them: the rehearsal's
# checkpoints keep the depth (every truncation and layer setting of the paper run applies) and the longest input,
# not the width.
def hub_shape(name: str) -> dict:
    """What `write_hub_checkpoint` writes for hub model `name`: its family, depth and tokenizer, from the name
    (the families of the paper run: BERT cased/uncased, RoBERTa, ALBERT, ElasticBERT, DistilBERT, BART
    English/Chinese, CPT; base or large)."""
    short = name.lower().rsplit("/", 1)[-1]
    large = "large" in short
    if "cpt" in short:  # fnlp/cpt-base: 10 S-Enc + 2 U-Dec, G-Dec 2; cpt-large: 20 + 4, G-Dec 4
        return {"family": "cpt", "num_layers": 24 if large else 12, "decoder_layers": 4 if large else 2, "positions": 512}
    if "bart" in short:  # bart-base 6 + 6, bart-large 12 + 12
        depth = 12 if large else 6
        return {"family": "bart", "num_layers": depth, "decoder_layers": depth, "chinese": "chinese" in short,
                "positions": 1024}
    for family in ("elasticbert", "distilbert", "roberta", "albert", "bert"):  # the longest name first
        if family in short:
            depth = 6 if family == "distilbert" else (24 if large else 12)
            return {"family": family, "num_layers": depth, "positions": 512,
                    "cased": family in ("bert", "distilbert") and "-cased" in short}
    raise HasheeError(f"hub model {name!r}: no tiny checkpoint family for it -- expected a name of the families "
                      f"{', '.join(FAMILIES + SEQ2SEQ_FAMILIES)} (e.g. bert-base-uncased, fnlp/cpt-large)")


def write_hub_checkpoint(name: str, directory, seed: int = 0) -> Written:
    """A tiny random checkpoint standing in for hub model `name`, in its hub layout, in `directory`."""
    return write_checkpoint(directory=directory, seed=seed, **hub_shape(name))

"""Tiny random checkpoints in each backbone family's hub layout, built offline with transformers' own
config and model classes and `save_pretrained`: config.json, the weights under the names the hub's
pre-training checkpoints use (heads included, which the loader drops), and the tokenizer files.

- bert: BertForPreTraining (`bert.*`, `cls.*`), WordPiece vocab.txt.
- roberta: RobertaForMaskedLM (`roberta.*`, `lm_head.*`, no pooler), byte-level BPE vocab.json + merges.txt,
  one token type, positions offset by pad_token_id + 1.
- albert: AlbertForPreTraining (`albert.*` with one shared layer under albert_layer_groups.0.albert_layers.0,
  the embedding projection encoder.embedding_hidden_mapping_in, `pooler.weight`), a Unigram tokenizer.
- distilbert: DistilBertForMaskedLM (`distilbert.transformer.layer.*`, vocab_* heads), vocab.txt.
- elasticbert (not in transformers): a BertModel's weights under fastnlp/ElasticBERT's names
  (`elasticbert.*`, one pooler per exit `elasticbert.encoder.pooler.<i>.dense.*`), pytorch_model.bin and a
  config.json with model_type elasticbert, vocab.txt.

`write_checkpoint(family, directory)` returns what the test compares against: the transformers model
the checkpoint's encoder is (for elasticbert, a BertModel holding the same weights) and, for
elasticbert, the per-exit pooler weights.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

FAMILIES = ("bert", "roberta", "albert", "elasticbert", "distilbert")
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
    import shutil

    from transformers import BertTokenizer

    shutil.copy(_bert_vocab(), directory / "vocab.txt")
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
                     safetensors: bool = True) -> Written:
    """A tiny random `family` checkpoint in `directory` (created); see the module docstring."""
    import transformers as tf

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    sizes = {"hidden_size": HIDDEN, "num_hidden_layers": num_layers, "num_attention_heads": HEADS,
             "intermediate_size": FFN, "max_position_embeddings": POSITIONS}
    save = {"safe_serialization": safetensors}
    if family == "bert":
        tokenizer = _wordpiece(directory, {})
        model = tf.BertForPreTraining(tf.BertConfig(vocab_size=len(tokenizer), **sizes)).eval()
        model.save_pretrained(str(directory), **save)
        return Written(family, directory, model.bert)
    if family == "roberta":
        tokenizer = _roberta_tokenizer(directory)
        config = tf.RobertaConfig(vocab_size=len(tokenizer), type_vocab_size=1, pad_token_id=tokenizer.pad_token_id,
                                  bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                                  **{**sizes, "max_position_embeddings": POSITIONS + 2})  # as roberta-base: 512 + 2
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
                                     hidden_dim=FFN, max_position_embeddings=POSITIONS)
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
    raise ValueError(f"unknown family {family!r}; valid: {', '.join(FAMILIES)}")

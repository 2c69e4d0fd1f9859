"""Inputs of the difficulty study: SNLI 1.0 raw files and a CoNLL-style tagging corpus.

SNLI 1.0 raw (`<snli_dir>/snli_1.0_{train,dev,test}.txt`, as released by Stanford): tab-separated,
a header row, column 0 `gold_label` (`-` when the five annotators had no majority), columns 5/6
`sentence1`/`sentence2`, then captionID, pairID and the annotators' labels label1..label5 (train
rows often carry only label1). Columns are found by their header names, falling back to the
positions above.

Tagging corpus (`<tagging_dir>/{train,dev,test}.txt`), one token per line and a blank line between
sentences, in either of two layouts, told apart line by line:
- CoNLL style: the word in the first column, its tag in the last (whitespace-separated, e.g. BIO
  tags `B-PERSON`); `-DOCSTART-` lines are ignored;
- CoNLL-2012 (OntoNotes 5.0 `*_conll` files, what the reference reads through fastNLP's
  OntoNotesNERLoader): 11+ columns, the word in column 3 and the named entity in column 10 in
  bracket notation (`(PERSON*`, `*`, `*)`), turned into BIO tags here; `#begin/#end document`
  lines are ignored.

`write_demo` generates both layouts offline, with difficulty that is partly learnable (see there).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path

from hashee.core.errors import HasheeError
from hashee.core.io import read_text_checked, split_text_lines, write_text_atomic

SNLI_LABELS = ("entailment", "neutral", "contradiction")
NO_MAJORITY = "-"
SNLI_SPLITS = ("train", "dev", "test")
TAGGING_SPLITS = ("train", "dev", "test")
SNLI_HEADER = ("gold_label", "sentence1_binary_parse", "sentence2_binary_parse", "sentence1_parse",
               "sentence2_parse", "sentence1", "sentence2", "captionID", "pairID",
               "label1", "label2", "label3", "label4", "label5")


@dataclass(frozen=True)
class SnliPair:
    gold: str  # entailment | neutral | contradiction | '-' (no majority)
    premise: str
    hypothesis: str
    where: str  # file:line, for provenance and error messages


@dataclass(frozen=True)
class TaggedSentence:
    words: tuple[str, ...]
    tags: tuple[str, ...]
    where: str  # file:line of its first token


def snli_file(snli_dir, split: str) -> Path:
    return Path(snli_dir) / f"snli_1.0_{split}.txt"


def _lines(path: Path, what: str) -> list[str]:
    if not path.is_file():
        raise HasheeError(f"{path}: {what} file not found")
    return split_text_lines(read_text_checked(path))


def read_snli(path) -> list[SnliPair]:
    """Every pair of one raw SNLI file, no-majority ones included (gold '-')."""
    path = Path(path)
    lines = _lines(path, "SNLI 1.0 raw (snli_1.0_<split>.txt)")
    if not lines or not lines[0].strip():
        raise HasheeError(f"{path}:1: empty file; expected SNLI's header {' '.join(SNLI_HEADER[:7])} ...")
    header = lines[0].split("\t")
    column = {name: header.index(name) if name in header else default
              for name, default in (("gold_label", 0), ("sentence1", 5), ("sentence2", 6))}
    if header[0] != "gold_label":
        raise HasheeError(f"{path}:1: header starts with {header[0][:30]!r}, expected 'gold_label' "
                          "(an SNLI 1.0 raw .txt file)")
    width = max(column.values()) + 1
    pairs = []
    for line_no, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split("\t")
        where = f"{path}:{line_no}"
        if len(fields) < width:
            raise HasheeError(f"{where}: {len(fields)} field(s), expected at least {width} "
                              "(gold_label ... sentence1, sentence2)")
        gold = fields[column["gold_label"]].strip()
        if gold != NO_MAJORITY and gold not in SNLI_LABELS:
            raise HasheeError(f"{where}: gold_label {gold[:30]!r} is not one of {', '.join(SNLI_LABELS)} or '-'")
        pairs.append(SnliPair(gold, fields[column["sentence1"]], fields[column["sentence2"]], where))
    if not pairs:
        raise HasheeError(f"{path}:2: no pairs after the header")
    return pairs


def read_snli_split(snli_dir, split: str) -> list[SnliPair]:
    return read_snli(snli_file(snli_dir, split))


_ONTONOTES_NE = re.compile(r"^(\(([A-Za-z_]+))?\*(\))?$")  # "(PERSON*", "*", "*)", "(GPE*)"


def read_tagging(path) -> list[TaggedSentence]:
    path = Path(path)
    lines = _lines(path, "tagging corpus (CoNLL: word ... tag per line)")
    sentences, words, tags, start = [], [], [], 0
    open_entity = None  # CoNLL-2012: the entity type inside an open bracket
    for line_no, line in enumerate([*lines, ""], start=1):
        fields = line.split()
        if not fields or fields[0] == "-DOCSTART-" or fields[0].startswith("#"):
            if words:
                sentences.append(TaggedSentence(tuple(words), tuple(tags), f"{path}:{start}"))
            words, tags, open_entity = [], [], None
            continue
        if len(fields) < 2:
            raise HasheeError(f"{path}:{line_no}: one field {fields[0][:30]!r}; expected 'word ... tag'")
        if not words:
            start = line_no
        match = _ONTONOTES_NE.match(fields[10]) if len(fields) >= 11 else None
        if match is None:  # CoNLL style: word first, tag last
            words.append(fields[0])
            tags.append(fields[-1])
            continue
        opened, entity, closed = match.groups()
        if opened:
            tags.append(f"B-{entity}")
            open_entity = entity
        else:
            tags.append(f"I-{open_entity}" if open_entity else "O")
        if closed:
            if open_entity is None:
                raise HasheeError(f"{path}:{line_no}: entity bracket closed that was never opened")
            open_entity = None
        words.append(fields[3])
    if not sentences:
        raise HasheeError(f"{path}:1: no sentences")
    return sentences


def read_tagging_split(tagging_dir, split: str) -> list[TaggedSentence]:
    return read_tagging(Path(tagging_dir) / f"{split}.txt")


# ------------------------------------------------------------------------------------ offline data
# SNLI-like pairs. A pair's label follows from how the hypothesis changes the premise (same
# sentence: entailment; another activity: contradiction; an added detail: neutral). Difficulty is
# controlled: a pair built around a vague verb ("seems to", "might be") is the kind annotators
# disagree on, so its gold label is '-' with high probability, and its label word gets swapped,
# which also makes it hard for a model. The cue is in the text, so difficulty is partly learnable.

_PEOPLE = ["a man", "a woman", "a child", "two dogs", "an old man", "a girl", "a boy", "the players",
           "a musician", "a chef", "the workers", "a tourist"]
_ACTIVITIES = ["is running in the park", "is playing a guitar", "is cooking dinner", "is reading a book",
               "is riding a bike", "is swimming in a lake", "is painting a wall", "is sleeping on a couch",
               "is climbing a rock", "is eating an apple"]
_DETAILS = ["for a contest", "with a friend", "after work", "on a sunny day", "to relax", "for money"]
_VAGUE = ["seems to be", "might be", "could be", "appears to be"]


def _snli_pair(rng: random.Random, vague: bool) -> tuple[str, str, str]:
    person, activity = rng.choice(_PEOPLE), rng.choice(_ACTIVITIES)
    premise = f"{person.capitalize()} {activity} ."
    label = rng.choice(SNLI_LABELS)
    if label == "contradiction":
        hyp_activity = rng.choice([a for a in _ACTIVITIES if a != activity])
    else:
        hyp_activity = activity
    hypothesis = f"{person.capitalize()} {hyp_activity}"
    if label == "neutral":
        hypothesis += f" {rng.choice(_DETAILS)}"
    if vague:
        hypothesis = hypothesis.replace(" is ", f" {rng.choice(_VAGUE)} ", 1)
        label = rng.choice(SNLI_LABELS)  # the vague verb blurs the relation
    return premise, hypothesis + " .", label


def _annotators(rng: random.Random, label: str, vague: bool) -> list[str]:
    agree = 0.2 if vague else 0.9
    return [label if rng.random() < agree else rng.choice(SNLI_LABELS) for _ in range(5)]


def _gold(votes: list[str]) -> str:
    best = max(SNLI_LABELS, key=votes.count)
    return best if votes.count(best) >= 3 else NO_MAJORITY


def snli_demo_text(rng: random.Random, size: int) -> str:
    rows = ["\t".join(SNLI_HEADER)]
    for i in range(size):
        vague = rng.random() < 0.3
        premise, hypothesis, label = _snli_pair(rng, vague)
        votes = _annotators(rng, label, vague)
        parse = "( . )"
        rows.append("\t".join([_gold(votes), parse, parse, parse, parse, premise, hypothesis,
                               f"{i}.jpg#0", f"{i}r1", *votes]))
    return "\n".join(rows) + "\n"


# A tiny NER corpus. Names can be people, places or organisations; a few ("Jordan", "Washington",
# "Paris") are ambiguous and only the context word decides ("met" -> person, "in" -> place), so
# their tags need more layers: token-level difficulty with a learnable cue.
_NAMES = {"PERSON": ["Alice", "Bob", "Maria", "Chen", "Ahmed"], "GPE": ["London", "Tokyo", "Berlin", "Lagos"],
          "ORG": ["Google", "UNICEF", "Siemens", "Reuters"]}
_AMBIGUOUS = ["Jordan", "Washington", "Paris"]
_TEMPLATES = [("yesterday", "we", "met", "{PERSON}", "near", "the", "station"),
              ("she", "moved", "to", "{GPE}", "last", "year"),
              ("{ORG}", "hired", "{PERSON}", "in", "{GPE}"),
              ("they", "flew", "from", "{GPE}", "to", "{GPE}"),
              ("{PERSON}", "works", "for", "{ORG}")]


def _tagged_sentence(rng: random.Random) -> tuple[list[str], list[str]]:
    words, tags = [], []
    for slot in rng.choice(_TEMPLATES):
        if slot.startswith("{"):
            kind = slot[1:-1]
            name = rng.choice(_AMBIGUOUS) if kind in ("PERSON", "GPE") and rng.random() < 0.3 \
                else rng.choice(_NAMES[kind])
            parts = [name, "Smith"] if kind == "PERSON" and rng.random() < 0.3 else [name]
            words += parts
            tags += [f"B-{kind}"] + [f"I-{kind}"] * (len(parts) - 1)
        else:
            words.append(slot)
            tags.append("O")
    return words, tags


def tagging_demo_text(rng: random.Random, size: int) -> str:
    blocks = ["-DOCSTART- -X- O\n"]
    for _ in range(size):
        words, tags = _tagged_sentence(rng)
        blocks.append("".join(f"{w} {t}\n" for w, t in zip(words, tags)))
    return "\n".join(blocks)


DEMO_SIZES = {  # split -> number of SNLI pairs / tagged sentences
    "small": {"snli": {"train": 320, "dev": 420, "test": 300}, "tagging": {"train": 150, "dev": 40, "test": 250}},
    "tiny": {"snli": {"train": 120, "dev": 120, "test": 100}, "tagging": {"train": 40, "dev": 20, "test": 60}},
}


def write_demo(snli_dir, tagging_dir, seed: int = 0, size: str = "small") -> list[Path]:
    """Write snli_1.0_{train,dev,test}.txt and the tagging corpus {train,dev,test}.txt."""
    if size not in DEMO_SIZES:
        raise HasheeError(f"unknown demo size {size!r}; valid: {', '.join(DEMO_SIZES)}")
    sizes, written = DEMO_SIZES[size], []
    for offset, split in enumerate(SNLI_SPLITS):
        path = snli_file(snli_dir, split)
        write_text_atomic(path, snli_demo_text(random.Random(seed * 10 + offset), sizes["snli"][split]))
        written.append(path)
    for offset, split in enumerate(TAGGING_SPLITS):
        path = Path(tagging_dir) / f"{split}.txt"
        write_text_atomic(path, tagging_demo_text(random.Random(seed * 10 + 5 + offset), sizes["tagging"][split]))
        written.append(path)
    return written

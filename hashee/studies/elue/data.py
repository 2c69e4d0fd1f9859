"""Synthetic ELUE data for offline runs and tests.

THIS DATA IS SYNTHETIC. It is generated from templates so that the whole pipeline runs without
the real ELUE release; numbers measured on it say nothing about the real tasks and are NOT
comparable with the paper's.

Every task is written in exactly the layout of the real release (same headers, test files with
an `index` column and no label), including its quirks: the MRPC and SNLI headers start with a
UTF-8 BOM and the SNLI and SciTail files use CRLF line endings, so every default run exercises
the loader's handling of them. IMDb reviews (80-200 words, longer than the demo's max_length)
and MRPC sentences contain `"`.

Labels (as in ELUE):
- SST-2, IMDb: 0 negative, 1 positive.
- SNLI: 0 entailment, 1 neutral, 2 contradiction.
- SciTail: 0 neutral, 1 entails.
- MRPC (`Quality`): 0 not a paraphrase, 1 paraphrase.
- STS-B: similarity 0-5 written with three decimals ("3.800").

Graded difficulty. Every instance is of one kind, in exact shares per split (`KIND_SHARES`;
labels are balanced independently of the kind):

- `lexical` (shallow): a word or phrase of the input decides, the same way wherever it occurs,
  so a bag of words gets it right. SST-2: one polar adjective ("the plot is dull"). IMDb: the
  opening says it ("I loved it."). SNLI: the hypothesis alone ("nobody is ..." contradicts,
  an added detail such as "tall" is neutral, a more general word entails). SciTail: an
  over-general hypothesis ("always", "only", "all") is not entailed. MRPC: the second sentence
  reports another event ("cut 500 jobs", "denied"). STS-B: a caption paired with a news
  sentence (similarity near 0) or with its own paraphrase (near 5).
- the deep kinds, whose cue words occur as often with every label, so that a bag of words is at
  chance (or systematically wrong) on them and the model must use structure:
  SST-2 `negation` (negation and its scope: "is not dull" is positive, but in "the film , which
  is not about war , is dull" the "not" does not reach the adjective) and `contrast` (word order:
  the clause after "but" decides, the main clause of "although"/"even though" decides);
  IMDb `agreement` (long range: "my sister told me it was dull." ... two sentences later ... "she
  was wrong.") and `expectation` ("I expected it to be dull." ... "it turned out to be great.");
  SNLI, SciTail, MRPC and STS-B `comparison` (the second sentence uses the same words whatever
  the label; only comparing it with the first decides: a swapped activity or person, a detail
  the premise lacks, a swapped subject or object, a changed number or name, a changed part of
  the scene for STS-B's graded similarity).

On top of that a fixed 5 % of labels per split is replaced at random (label noise; STS-B: a
random score), so no model reaches 100 %. All words come from BERT's uncased vocabulary.
Output is byte-identical for a given seed and sizes.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from hashee.core.errors import HasheeError, unknown_name
from hashee.core.io import atomic_path
from hashee.core.tasks import TASKS

SIZES: dict[str, dict[str, int]] = {
    "small": {"train": 320, "dev": 80, "test": 400},
    "tiny": {"train": 48, "dev": 16, "test": 16},
}
# IMDb inputs are 4x longer than the others' (truncated to max_length): fewer keep the small run cheap.
TASK_SIZES: dict[str, dict[str, dict[str, int]]] = {"small": {"IMDb": {"train": 240}}}
LABEL_NOISE = 0.05
BOM_TASKS = ("SNLI", "MRPC")
CRLF_TASKS = ("SNLI", "SciTail")
# The official labelled test files (test_full.tsv) were written with CSV quoting: a field holding '"' is
# wrapped in quotes with its quotes doubled, where test.tsv holds the text raw (MRPC, IMDb). STS-B's test.tsv
# is CSV-quoted itself, so its test_full.tsv quotes such a field twice. So that the demo's STS-B carries that
# quirk too, every QUOTED_WORD_EVERY-th of its test rows quotes its first word (test only: training is
# unchanged). MRPC's test_full.tsv has 'label' for a header and '-' for both ids.
CSV_QUOTED_TEST_TASKS = ("STS-B",)
QUOTED_WORD_EVERY = 7
SHALLOW_KIND = "lexical"
KIND_SHARES: dict[str, dict[str, float]] = {
    "SST-2": {"lexical": 0.6, "negation": 0.2, "contrast": 0.2},
    "IMDb": {"lexical": 0.6, "agreement": 0.2, "expectation": 0.2},
    "SNLI": {"lexical": 0.6, "comparison": 0.4},
    "SciTail": {"lexical": 0.6, "comparison": 0.4},
    "MRPC": {"lexical": 0.6, "comparison": 0.4},
    "STS-B": {"lexical": 0.5, "comparison": 0.5},
}


@dataclass(frozen=True)
class DemoRow:
    fields: list[str]  # the text columns, in the file's order (MRPC: both ids, then both sentences)
    label: str  # as written: after label noise
    kind: str  # a key of KIND_SHARES[task]
    noisy: bool  # the written label was replaced at random


# --------------------------------------------------------------------------------------------
# helpers

def _sentence(text: str, end: str = ".") -> str:
    return text[0].upper() + text[1:] + end


def _a(word: str) -> str:
    return ("an " if word[0].lower() in "aeiou" else "a ") + word


def _exact_counts(shares: Mapping[str, float], n: int) -> dict[str, int]:
    # Largest remainder: the counts add up to n and each is within one of share * n.
    counts = {key: int(share * n) for key, share in shares.items()}
    by_remainder = sorted(shares, key=lambda key: (-(shares[key] * n - counts[key]), key))
    for key in by_remainder[: n - sum(counts.values())]:
        counts[key] += 1
    return counts


def _kinds(rng: random.Random, n: int, shares: Mapping[str, float]) -> list[str]:
    kinds = [kind for kind, count in _exact_counts(shares, n).items() for _ in range(count)]
    rng.shuffle(kinds)
    return kinds


def _noisy_rows(rng: random.Random, n: int) -> set[int]:
    # An exact share rather than a coin per row, so every split carries the same noise level.
    return set(rng.sample(range(n), round(LABEL_NOISE * n)))


def _balanced(rng: random.Random, n: int, k: int) -> list[int]:
    labels = [i % k for i in range(n)]
    rng.shuffle(labels)
    return labels


def _flip(rng: random.Random, label: int, k: int) -> int:
    return rng.choice([other for other in range(k) if other != label])


def _other(rng: random.Random, options: list, current):
    return rng.choice([o for o in options if o != current])


# --------------------------------------------------------------------------------------------
# SST-2: short, lower-cased, tokenized sentences like GLUE's SST-2

_SUBJECTS = ["the film", "this movie", "the story", "the acting", "the script", "the plot",
             "the soundtrack", "the ending", "the dialogue", "the direction", "the humor",
             "the pacing", "the cast", "the lead performance", "the camera work", "the second half"]
# Few enough that each recurs often in a few hundred sentences (a small model can pick them up).
_POSITIVE = ["good", "great", "wonderful", "charming", "brilliant", "funny", "moving", "beautiful",
             "clever", "delightful", "fresh", "engaging"]
_NEGATIVE = ["bad", "dull", "boring", "awful", "terrible", "weak", "flat", "clumsy", "silly",
             "stupid", "messy", "predictable"]
_INTENSIFIERS = ["very", "really", "truly", "quite", "remarkably", "so", "extremely", "incredibly",
                 "deeply", "rather", "utterly"]
_NEGATIONS = ["is not", "is n't", "is never", "is hardly", "is far from"]
_MILD_INTENSIFIERS = ["very", "really", "so", "particularly"]  # the ones that read well after "not"
_NOUNS = ["film", "movie", "comedy", "drama", "thriller", "picture", "story", "debut"]
# Topic words carry a polarity of their own but say nothing about the verdict: distractors.
_TOPICS = ["love", "hope", "friendship", "joy", "success", "death", "war", "grief", "crime",
           "failure", "loss", "family", "money", "music", "school"]
_OPENERS = ["based on a true story ,", "at two hours ,", "like many films of its kind ,",
            "directed by a newcomer ,", "as a whole ,", "from start to finish ,"]
_TAILS = ["in the second half", "for most of its running time", "at times", "in its own way",
          "on the big screen", "for a summer release", "despite its modest budget"]


def _adjective(rng: random.Random, positive: bool) -> str:
    return rng.choice(_POSITIVE if positive else _NEGATIVE)


def _intensifier(rng: random.Random, chance: float = 0.35) -> str:
    return rng.choice(_INTENSIFIERS) + " " if rng.random() < chance else ""


def _clause(rng: random.Random, positive: bool) -> str:
    return f"{rng.choice(_SUBJECTS)} is {_intensifier(rng)}{_adjective(rng, positive)}"


def _sst_text(rng: random.Random, kind: str, positive: bool) -> str:
    if kind == "lexical":
        if rng.random() < 0.6:
            text = _clause(rng, positive)
            if rng.random() < 0.25:
                text = f"{rng.choice(_OPENERS)} {text}"
            if rng.random() < 0.25:
                text = f"{text} {rng.choice(_TAILS)}"
        else:
            text = (f"{_a(_intensifier(rng, 0.5) + _adjective(rng, positive))} {rng.choice(_NOUNS)} "
                    f"about {rng.choice(_TOPICS)}")
    elif kind == "negation":
        subject = rng.choice(_SUBJECTS)
        if rng.random() < 0.7:  # the negation scopes over the adjective and flips it
            mild = rng.choice(_MILD_INTENSIFIERS) + " " if rng.random() < 0.3 else ""
            text = f"{subject} {rng.choice(_NEGATIONS)} {mild}{_adjective(rng, not positive)}"
        else:  # a "not" in a relative clause leaves the adjective alone
            text = (f"{subject} , which is not about {rng.choice(_TOPICS)} , is "
                    f"{_intensifier(rng)}{_adjective(rng, positive)}")
    else:  # contrast: word order says which of two opposite clauses decides
        form = rng.random()
        if form < 0.5:
            text = f"{_clause(rng, not positive)} , but {_clause(rng, positive)}"
        elif form < 0.75:
            text = f"although {_clause(rng, not positive)} , {_clause(rng, positive)}"
        else:
            text = f"{_clause(rng, positive)} , even though {_clause(rng, not positive)}"
    return text + " ."


def _sst2_fields(rng: random.Random, kind: str, label: int) -> list[str]:
    return [_sst_text(rng, kind, label == 1)]


# --------------------------------------------------------------------------------------------
# IMDb: long reviews. The opening (what a model sees within the demo's max_length) decides;
# the rest is plot summary and mixed opinions, one each way, and a closing line.

_TITLES = ["The Long River", "Night Train", "A Quiet Place", "The Last Summer", "Blue Harbor",
           "The Iron Road", "Silent Hill Farm", "Winter Garden", "The Red Door", "Lost Island"]
_RELATIVES = {"wife": "she", "husband": "he", "brother": "he", "sister": "she", "father": "he",
              "mother": "she", "son": "he", "daughter": "she"}
_ASPECTS = ["acting", "script", "music", "plot", "ending", "dialogue", "camera work", "lead actor",
            "story", "pacing", "special effects", "villain", "jokes", "costumes"]
_PLURAL_ASPECTS = {"special effects", "jokes", "costumes"}
_JOBS = ["teacher", "doctor", "soldier", "farmer", "writer", "nurse", "police officer", "student"]
_PLACES = ["a small town", "the city", "a fishing village", "an old castle", "the mountains", "a big hotel"]
_IMDB_INTROS = [
    'I watched "{title}" last night with my {relative}.',
    'I had heard a lot about "{title}" before I finally saw it.',
    'I rented "{title}" on a rainy weekend.',
    "I saw this film at a festival a few years ago.",
]
_IMDB_OPENING_VERDICTS = {
    True: ["I loved it.", "What a {adj} film.", "It was {adj} from start to finish.", "It was worth every minute."],
    False: ["I hated it.", "What a {adj} film.", "It was {adj} from start to finish.", "It was a waste of time."],
}
_IMDB_FILLERS = [  # short, so that an opening with two of them fits in 64 word pieces
    "The story follows a young {job} in {place}.",
    "Most of it takes place in {place}.",
    "It runs for almost two hours.",
    "The main character is a {job} with a secret.",
    "The film was made on a small budget.",
]
_IMDB_CLOSINGS = {  # the lexical kind restates the verdict at the end; the others close neutrally
    True: ["Overall, I would recommend it.", "All in all, a {adj} film and well worth your time.",
           "I would happily watch it again.", "{score} out of 10.", "Go and see it."],
    False: ["Overall, I would not recommend it.", "All in all, a {adj} film and a waste of time.",
            "Save your money and skip this one.", "{score} out of 10.", "Do not bother."],
    None: ["That is all I have to say about it.", "I will not give away the ending here.",
           "Make up your own mind."],
}


def _was(aspect: str) -> str:
    return f"the {aspect} {'were' if aspect in _PLURAL_ASPECTS else 'was'}"


def _word_count(text: str) -> int:
    return len(text.replace("<br />", " ").split())


def _filler(rng: random.Random) -> str:
    return rng.choice(_IMDB_FILLERS).format(job=rng.choice(_JOBS), place=rng.choice(_PLACES))


def _imdb_opening(rng: random.Random, kind: str, positive: bool) -> list[str]:
    title = rng.choice(_TITLES)
    if kind == "lexical":
        relative = rng.choice(list(_RELATIVES))
        verdict = rng.choice(_IMDB_OPENING_VERDICTS[positive]).format(adj=_adjective(rng, positive))
        aspects = [_sentence(f"{_was(aspect)} {_intensifier(rng, 0.3)}{_adjective(rng, positive)}")
                   for aspect in rng.sample(_ASPECTS, 2)]
        return [verdict, *aspects, rng.choice(_IMDB_INTROS).format(title=title, relative=relative)]
    middle = [_filler(rng) for _ in range(rng.randint(1, 2))]  # the distance the deep kinds must bridge
    if kind == "agreement":  # the relative's claim holds or not: a pronoun says so sentences later
        relative, pronoun = rng.choice(list(_RELATIVES.items()))
        right = rng.random() < 0.5
        claimed = positive if right else not positive
        return [f'My {relative} told me that "{title}" was {_adjective(rng, claimed)}.', *middle,
                _sentence(f"{pronoun} was {'right' if right else 'wrong'}")]
    expected = _adjective(rng, not positive)  # "expectation": the later, opposite sentence decides
    opening = rng.choice([f'I expected "{title}" to be {expected}.',
                          f'Before I saw "{title}", I was sure it would be {expected}.'])
    ending = rng.choice(["It turned out to be {adj}.", "In the end, it was {adj}."])
    return [opening, *middle, ending.format(adj=_adjective(rng, positive))]


def _imdb_text(rng: random.Random, kind: str, positive: bool) -> str:
    sentences = _imdb_opening(rng, kind, positive)
    closing_key = positive if kind == "lexical" else None
    closing = rng.choice(_IMDB_CLOSINGS[closing_key]).format(
        adj=_adjective(rng, positive), score=rng.randint(7, 10) if positive else rng.randint(1, 4))
    budget = rng.randint(80, 200) - _word_count(closing)
    opening_length = len(sentences)
    for _ in range(200):
        if rng.random() < 0.4:
            candidate = _filler(rng)
        else:  # one aspect each way: says nothing about the verdict
            first, second = rng.sample(_ASPECTS, 2)
            good_first = rng.random() < 0.5
            candidate = _sentence(f"{_was(first)} {_adjective(rng, good_first)}, but {_was(second)} "
                                  f"{_adjective(rng, not good_first)}")
        current = _word_count(" ".join(sentences))
        if current + _word_count(candidate) > budget:
            if current >= budget - 12:
                break
            continue
        sentences.append(candidate)
    if len(sentences) > opening_length + 1 and rng.random() < 0.5:  # IMDb's own paragraph breaks
        cut = rng.randint(opening_length + 1, len(sentences) - 1)
        sentences[cut - 1] += "<br /><br />" + sentences.pop(cut)
    sentences.append(closing)
    text = " ".join(sentences)
    while _word_count(text) < 80:  # rare: pad with neutral filler to the minimum length
        text = text[: -len(closing)] + "It runs for almost two hours. " + closing
    return text


def _imdb_fields(rng: random.Random, kind: str, label: int) -> list[str]:
    return [_imdb_text(rng, kind, label == 1)]


# --------------------------------------------------------------------------------------------
# SNLI: image-caption premises; 0 entailment, 1 neutral, 2 contradiction

_PEOPLE = [  # noun, pronoun, a more general noun, the opposite noun
    ("man", "his", "person", "woman"), ("woman", "her", "person", "man"),
    ("boy", "his", "child", "girl"), ("girl", "her", "child", "boy"),
    ("young man", "his", "person", "old woman"), ("old woman", "her", "person", "young man"),
]
_ACTIVITIES = [  # verb phrase, what it entails, where it happens
    ("playing a guitar", "playing an instrument", "any"), ("riding a bike", "riding something", "out"),
    ("reading a book", "reading", "any"), ("eating an apple", "eating fruit", "any"),
    ("cooking dinner", "making food", "in"), ("painting a picture", "making art", "any"),
    ("kicking a ball", "playing with a ball", "out"), ("washing a car", "cleaning a car", "out"),
    ("drinking coffee", "drinking something", "any"), ("climbing a tree", "climbing", "out"),
    ("walking a dog", "walking with an animal", "out"), ("singing a song", "making music", "any"),
]
_LOCATIONS = {"out": [("in a park", "outside"), ("on the street", "outside"), ("at the beach", "outside"),
                      ("near a river", "outside")],
              "in": [("in a kitchen", "inside"), ("in a small room", "inside"), ("at home", "inside")]}
_CLOTHES = ["in a red shirt", "wearing a blue hat", "in a black coat", "wearing glasses", "in a white dress"]
# Hypothesis-only cues of the lexical kind (as in the real SNLI's annotation artifacts).
_EXTRAS = ["tired", "happy", "famous", "married", "waiting for a friend", "on vacation", "late for work"]
_PURPOSES = ["for a contest", "for money", "to relax", "before work"]
_NEW_ADJECTIVES = ["tall", "short", "rich", "sad"]
_CONFLICTING = ["sleeping in a bed", "sitting on a couch", "swimming in a pool", "driving a truck"]
# The comparison kind's details: two groups that never contradict each other, so a detail of
# one group in the hypothesis is neutral to a premise that states one of the other.
_DETAILS = (["with a friend", "with two children", "with some neighbors", "with a group of people"],
            ["in the morning", "after lunch", "for the first time", "at night"])


def _snli_scene(rng: random.Random) -> dict:
    noun, pronoun, general, opposite = rng.choice(_PEOPLE)
    verb, entailed, where = rng.choice(_ACTIVITIES)
    place_kind = rng.choice(["out", "in"]) if where == "any" else where
    location, side = rng.choice(_LOCATIONS[place_kind])
    return {"noun": noun, "pronoun": pronoun, "general": general, "opposite": opposite, "verb": verb,
            "entailed": entailed, "location": location, "side": side,
            "clothes": rng.choice(_CLOTHES) if rng.random() < 0.4 else ""}


def _snli_lexical(rng: random.Random, s: dict, label: int) -> list[str]:
    dressed = f"{s['noun']} {s['clothes']}".strip()
    premise = _sentence(f"{_a(dressed)} is {s['verb']} {s['location']}")
    noun, verb = s["noun"], s["verb"]
    if label == 0:  # a more general statement
        options = [f"{_a(s['general'])} is {s['entailed']}", f"{_a(noun)} is {s['side']}",
                   f"someone is {s['entailed']} {s['location']}"]
    elif label == 1:  # a detail the premise does not mention
        options = [f"{_a(noun)} is {verb} {rng.choice(_PURPOSES)}", f"the {noun} is {rng.choice(_EXTRAS)}",
                   f"{_a(rng.choice(_NEW_ADJECTIVES) + ' ' + noun)} is {verb}"]
    else:  # a negation or an activity nobody does while doing another
        options = [f"nobody is {s['entailed']}", f"{_a(noun)} is {rng.choice(_CONFLICTING)}",
                   f"{_a(noun)} is not {verb}"]
    return [premise, _sentence(rng.choice(options))]


def _snli_comparison(rng: random.Random, s: dict, label: int) -> list[str]:
    # The hypothesis is always "<person> is <activity> <detail>", from the premise's own pools.
    group = rng.randrange(2)
    detail = rng.choice(_DETAILS[group])
    dressed = f"{s['noun']} {s['clothes']}".strip()
    premise = _sentence(f"{_a(dressed)} is {s['verb']} {detail} {s['location']}")
    person, verb = s["noun"], s["verb"]
    if label == 1:
        detail = rng.choice(_DETAILS[1 - group])
    elif label == 2:
        if rng.random() < 0.5:
            person = s["opposite"]
        else:
            verb = _other(rng, [a[0] for a in _ACTIVITIES], verb)
    return [premise, _sentence(f"{_a(person)} is {verb} {detail}")]


def _snli_fields(rng: random.Random, kind: str, label: int) -> list[str]:
    scene = _snli_scene(rng)
    return (_snli_lexical if kind == "lexical" else _snli_comparison)(rng, scene, label)


# --------------------------------------------------------------------------------------------
# SciTail: science premises and short hypotheses; 0 neutral, 1 entails

_FACTS = [  # subject, verb, object, rest, passive verb, confusable subjects, confusable objects
    ("the heart", "pumps", "blood", "through the body", "is pumped", ["the liver", "the brain", "the stomach"], ["air", "food"]),
    ("plants", "use", "sunlight", "to make food", "is used", ["animals", "rocks", "insects"], ["soil", "wind"]),
    ("the moon", "travels around", "the earth", "once a month", "is circled", ["the sun", "mars"], ["the sun", "mars"]),
    ("water", "covers", "most of the earth", "", "is covered", ["ice", "sand"], ["most of the moon", "most of mars"]),
    ("the lungs", "take in", "oxygen", "from the air", "is taken in", ["the bones", "the muscles"], ["salt", "sugar"]),
    ("bees", "carry", "pollen", "between flowers", "is carried", ["ants", "birds"], ["water", "seeds"]),
    ("the sun", "heats", "the surface", "of the earth", "is heated", ["the moon", "the wind"], ["the core", "the mantle"]),
    ("the liver", "removes", "harmful chemicals", "from the blood", "are removed", ["the heart", "the brain"], ["oxygen", "cells"]),
    ("roots", "absorb", "water", "from the soil", "is absorbed", ["leaves", "flowers"], ["sunlight", "oxygen"]),
    ("a magnet", "attracts", "iron", "", "is attracted", ["glass", "wood"], ["plastic", "paper"]),
    ("friction", "produces", "heat", "when two surfaces rub together", "is produced", ["gravity", "light"], ["ice", "sound"]),
    ("the nucleus", "controls", "the activities", "of the cell", "are controlled", ["the wall", "the membrane"], ["the shape", "the color"]),
    ("volcanoes", "release", "gas and ash", "into the air", "are released", ["rivers", "glaciers"], ["salt and sand", "water and ice"]),
    ("glaciers", "shape", "valleys", "in the mountains", "are shaped", ["winds", "animals"], ["beaches", "deserts"]),
    ("insulin", "controls", "sugar levels", "in the blood", "are controlled", ["oxygen", "salt"], ["fat levels", "water levels"]),
    ("copper", "conducts", "electricity", "very well", "is conducted", ["rubber", "wood", "glass"], ["sound", "light"]),
    ("the stomach", "breaks down", "food", "with strong acid", "is broken down", ["the lungs", "the brain"], ["bone", "air"]),
    ("white blood cells", "fight", "infections", "in the body", "are fought", ["red blood cells", "bones"], ["cancer", "cold"]),
    ("each kidney", "filters", "waste", "from the blood", "is filtered", ["each lung", "each bone"], ["sugar", "water"]),
    ("wind", "moves", "sand", "across the desert", "is moved", ["rain", "snow"], ["rocks", "water"]),
    ("gravity", "pulls", "objects", "toward the earth", "are pulled", ["light", "friction"], ["clouds", "stars"]),
    ("sharks", "hunt", "fish", "in the ocean", "are hunted", ["whales", "turtles"], ["birds", "plants"]),
]
_SCITAIL_WRAPPERS = ["{fact}.", "Scientists have shown that {fact}.", "In science class we learned that {fact}.",
                     "According to the textbook, {fact}.", "{fact}, which is important for living things.",
                     "It is well known that {fact}, and this matters for life on earth."]
# Over-general claims no premise here supports: the lexical kind's cue for "neutral".
_OVERGENERAL = ["only {subject} {verb} {obj}", "{subject} always {verb} all {obj}",
                "nothing but {subject} {verb} {obj}", "{subject} {verb} {obj} in every possible way"]


def _fact_text(subject: str, verb: str, obj: str, rest: str) -> str:
    return " ".join(w for w in [subject, verb, obj, rest] if w)


def _scitail_fields(rng: random.Random, kind: str, label: int) -> list[str]:
    first, second = rng.sample(range(len(_FACTS)), 2)
    subject, verb, obj, rest, passive, alt_subjects, alt_objects = _FACTS[first]
    fact = _fact_text(subject, verb, obj, rest)
    if rng.random() < 0.25:  # two facts in one premise; the hypothesis is about the first
        premise = _sentence(f"{fact}, and {_fact_text(*_FACTS[second][:4])}")
    else:
        premise = rng.choice(_SCITAIL_WRAPPERS).format(fact=fact)
        premise = premise[0].upper() + premise[1:]
    entailed = [_fact_text(subject, verb, obj, ""), fact, _fact_text(obj, passive, rest, f"by {subject}")]
    if label == 1:
        hypothesis = rng.choice(entailed)
    elif kind == "lexical":
        hypothesis = rng.choice(_OVERGENERAL).format(subject=subject, verb=verb, obj=obj)
    else:  # the same shapes as the entailed ones, with a part swapped for a confusable one
        unrelated = [f for i, f in enumerate(_FACTS) if i not in (first, second)]
        hypothesis = rng.choice([_fact_text(rng.choice(alt_subjects), verb, obj, rest),
                                 _fact_text(subject, verb, rng.choice(alt_objects), rest),
                                 _fact_text(obj, passive, rest, f"by {rng.choice(alt_subjects)}"),
                                 _fact_text(*rng.choice(unrelated)[:4])])
    return [premise, _sentence(hypothesis)]


# --------------------------------------------------------------------------------------------
# MRPC: news sentence pairs; 1 paraphrase, 0 not. Every template returns the first sentence
# and a paraphrase of it, a near copy with one detail changed (comparison kind) or a sentence
# about another event of the same story, in words only such sentences use (lexical kind).

_COMPANIES = ["Microsoft", "Google", "Intel", "Oracle", "Boeing", "Ford", "Disney", "Sony", "Nokia", "Apple"]
_NAMES = [("John Smith", "he"), ("Mary Jones", "she"), ("David Brown", "he"), ("Sarah Taylor", "she"),
          ("James Wilson", "he"), ("Susan Clark", "she"), ("Robert Miller", "he"), ("Laura Davis", "she")]
_ROLES = ["Senator", "Governor", "Mayor"]
_STATES = ["Texas", "Ohio", "California", "Florida", "Georgia", "Michigan", "Oregon", "Virginia"]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
_QUARTERS = ["first", "second", "third", "fourth"]
_ACTIONS = ["raise taxes", "run for president", "sign the bill", "support the plan", "leave office next year",
            "visit the region", "cut the budget", "meet with union leaders"]
_LAWS = ["the new tax law", "the state ban on smoking", "the city gun law", "the school dress code"]
_RULINGS = ["unconstitutional", "legal"]
_VEHICLES = [("bus", "crashed"), ("train", "left the tracks"), ("ferry", "sank"), ("small plane", "crashed")]
_RISE = ["rose", "increased", "climbed", "grew"]
_FALL = ["fell", "dropped", "declined", "slipped"]


def _mrpc_earnings(rng: random.Random, kind: str, paraphrase: bool) -> tuple[str, str]:
    company, day, quarter = rng.choice(_COMPANIES), rng.choice(_DAYS), rng.choice(_QUARTERS)
    up = rng.random() < 0.5
    pct, amount = rng.randint(2, 40), f"{rng.randint(1, 90) / 10:.1f}"
    first = f"{company} said on {day} that its {quarter}-quarter profit {rng.choice(_RISE if up else _FALL)} {pct} percent to ${amount} billion."
    if not paraphrase and kind == "lexical":
        return first, f"{company} also plans to cut {rng.randint(2, 9) * 500} jobs in the {quarter} quarter, analysts said."
    if not paraphrase:
        change = rng.randrange(3)
        if change == 0:
            up = not up
        elif change == 1:
            pct = _other(rng, list(range(2, 41)), pct)
        else:
            quarter = _other(rng, _QUARTERS, quarter)
    verb = rng.choice(_RISE if up else _FALL)
    second = rng.choice([
        f"{company}'s {quarter}-quarter profit {verb} {pct} percent to ${amount} billion, the company said {day}.",
        f"On {day}, {company} reported that {quarter}-quarter profit {verb} {pct} percent, to ${amount} billion.",
        f"{quarter.capitalize()}-quarter profit at {company} {verb} {pct} percent to ${amount} billion.",
    ])
    return first, second


def _mrpc_statement(rng: random.Random, kind: str, paraphrase: bool) -> tuple[str, str]:
    (name, pronoun), role, state = rng.choice(_NAMES), rng.choice(_ROLES), rng.choice(_STATES)
    day, action = rng.choice(_DAYS), rng.choice(_ACTIONS)
    first = f"{role} {name} of {state} said on {day} that {pronoun} would {action}."
    if not paraphrase and kind == "lexical":
        return first, f'A spokesman denied reports that {name} had been asked to resign, calling them "rumors."'
    if not paraphrase:
        if rng.random() < 0.5:
            action = _other(rng, _ACTIONS, action)
        else:
            name, pronoun = _other(rng, _NAMES, (name, pronoun))
    second = rng.choice([
        f"{name}, the {state} {role.lower()}, said {day} {pronoun} would {action}.",
        f'"I would {action}," {role} {name} said on {day}.',
        f"On {day}, {state} {role} {name} announced that {pronoun} would {action}.",
    ])
    return first, second


def _mrpc_ruling(rng: random.Random, kind: str, paraphrase: bool) -> tuple[str, str]:
    state, day, law, ruling = rng.choice(_STATES), rng.choice(_DAYS), rng.choice(_LAWS), rng.choice(_RULINGS)
    first = f"A federal judge in {state} ruled on {day} that {law} was {ruling}."
    if not paraphrase and kind == "lexical":
        return first, "Lawyers for the state said they would appeal the decision to the supreme court."
    if not paraphrase:
        if rng.random() < 0.5:
            ruling = _other(rng, _RULINGS, ruling)
        else:
            law = _other(rng, _LAWS, law)
    second = rng.choice([f"On {day}, a {state} federal judge found {law} {ruling}.",
                         f"{law[0].upper() + law[1:]} is {ruling}, a federal judge in {state} said {day}."])
    return first, second


def _mrpc_accident(rng: random.Random, kind: str, paraphrase: bool) -> tuple[str, str]:
    (vehicle, event), state, day, killed = rng.choice(_VEHICLES), rng.choice(_STATES), rng.choice(_DAYS), rng.randint(3, 40)
    first = f"At least {killed} people were killed when a {vehicle} {event} in {state} on {day}."
    if not paraphrase and kind == "lexical":
        return first, f"The cause of the {vehicle} accident remains under investigation, a spokesman for the police said."
    if not paraphrase:
        change = rng.randrange(3)
        if change == 0:
            killed = _other(rng, list(range(3, 41)), killed)
        elif change == 1:
            day = _other(rng, _DAYS, day)
        else:
            vehicle = _other(rng, [v for v, _ in _VEHICLES], vehicle)
    second = f"A {vehicle} {event} in {state} on {day}, killing at least {killed} people, officials said."
    return first, second


_MRPC_TEMPLATES: list[Callable[[random.Random, str, bool], tuple[str, str]]] = [
    _mrpc_earnings, _mrpc_statement, _mrpc_ruling, _mrpc_accident]


def _mrpc_fields(rng: random.Random, kind: str, label: int) -> list[str]:
    first, second = rng.choice(_MRPC_TEMPLATES)(rng, kind, label == 1)
    first_id = rng.randint(100000, 3400000)  # MRPC sentence ids: 6-7 digits, near each other
    second_id = first_id + rng.randint(1, 900)
    return [str(first_id), str(second_id), first, second]


# --------------------------------------------------------------------------------------------
# STS-B: similarity 0-5 from how much of a scene two captions share

_STS_SUBJECTS = [("man", "guy"), ("woman", "lady"), ("boy", "kid"), ("girl", "young girl"), ("dog", "puppy"),
                 ("cat", "kitten")]
_STS_ACTIONS = [("playing", ["a guitar", "a piano", "a flute", "the drums"]),
                ("cutting", ["a tomato", "an onion", "a potato", "some bread"]),
                ("eating", ["an apple", "a sandwich", "some rice", "a banana"]),
                ("riding", ["a horse", "a bike", "a bus", "a boat"]),
                ("watching", ["a movie", "the news", "the birds", "a game"])]
_STS_PLACES = ["in a park", "in a kitchen", "on a beach", "at home", "on the street"]
_SYNONYM_VERBS = {"cutting": "slicing", "watching": "looking at", "playing": "playing", "eating": "having",
                  "riding": "riding"}
_STS_NEWS = ["{company} said its {quarter}-quarter profit rose {pct} percent.",
             "A federal judge in {state} ruled that {law} was {ruling}.",
             "{role} {name} of {state} said on {day} that {pronoun} would {action}."]
# How the second sentence relates to the first, and the similarity that implies. The lexical
# kind's words give it away (a news sentence; the paraphrase's synonyms such as "guy", "kitten");
# the comparison kind's captions are written from the same words whatever the score.
_STS_CHANGES = {
    "lexical": [("news", 0.1), ("paraphrase", 4.9)],
    "comparison": [("drop_place", 4.2), ("change_place", 3.6), ("change_object", 2.8), ("change_subject", 2.3),
                   ("change_action", 1.4), ("share_place", 0.7), ("unrelated", 0.1)],
}


def _sts_caption(subject: str, verb: str, obj: str, place: str) -> str:
    return _sentence(" ".join(w for w in [_a(subject), "is", verb, obj, place] if w))


def _sts_news(rng: random.Random) -> str:
    name, pronoun = rng.choice(_NAMES)
    return rng.choice(_STS_NEWS).format(
        company=rng.choice(_COMPANIES), quarter=rng.choice(_QUARTERS), pct=rng.randint(2, 40),
        state=rng.choice(_STATES), law=rng.choice(_LAWS), ruling=rng.choice(_RULINGS), role=rng.choice(_ROLES),
        name=name, pronoun=pronoun, day=rng.choice(_DAYS), action=rng.choice(_ACTIONS))


def _stsb_pair(rng: random.Random, change: str) -> list[str]:
    subject, alias = rng.choice(_STS_SUBJECTS)
    verb, objects = rng.choice(_STS_ACTIONS)
    obj = rng.choice(objects)
    place = rng.choice(_STS_PLACES) if rng.random() < 0.7 else ""
    first = _sts_caption(subject, verb, obj, place)
    if change == "news":
        second = _sts_news(rng)
    elif change == "paraphrase":
        second = _sts_caption(alias, _SYNONYM_VERBS[verb], obj, place)
    elif change == "drop_place":
        second = _sts_caption(subject, verb, obj, "" if place else rng.choice(_STS_PLACES))
    elif change == "change_place":
        second = _sts_caption(subject, verb, obj, _other(rng, _STS_PLACES, place))
    elif change == "change_object":
        second = _sts_caption(subject, verb, _other(rng, objects, obj), place)
    elif change == "change_subject":
        second = _sts_caption(_other(rng, _STS_SUBJECTS, (subject, alias))[0], verb, obj, place)
    elif change == "change_action":
        other_verb, other_objects = _other(rng, _STS_ACTIONS, (verb, objects))
        second = _sts_caption(subject, other_verb, rng.choice(other_objects), place)
    else:
        other_subject = _other(rng, _STS_SUBJECTS, (subject, alias))[0]
        other_verb, other_objects = _other(rng, _STS_ACTIONS, (verb, objects))
        other_place = place if change == "share_place" and place else _other(rng, _STS_PLACES, place)
        second = _sts_caption(other_subject, other_verb, rng.choice(other_objects), other_place)
    return [first, second] if rng.random() < 0.5 else [second, first]


def _stsb_rows(rng: random.Random, n: int) -> list[DemoRow]:
    kinds = _kinds(rng, n, KIND_SHARES["STS-B"])
    seen = dict.fromkeys(_STS_CHANGES, 0)
    changes = []
    for kind in kinds:  # each kind's changes in turn, so every one is equally frequent
        options = _STS_CHANGES[kind]
        changes.append(options[seen[kind] % len(options)])
        seen[kind] += 1
    noisy = _noisy_rows(rng, n)
    rows = []
    for row, (kind, (change, similarity)) in enumerate(zip(kinds, changes)):
        fields = _stsb_pair(rng, change)
        score = rng.uniform(0.0, 5.0) if row in noisy else similarity + rng.gauss(0.0, 0.3)
        score = round(min(5.0, max(0.0, score)) * 5) / 5  # annotators' averages: multiples of 0.2
        rows.append(DemoRow(fields, f"{score:.3f}", kind, row in noisy))
    return rows


# --------------------------------------------------------------------------------------------
# assembling and writing

_FIELDS: dict[str, tuple[int, Callable[[random.Random, str, int], list[str]]]] = {  # classes, fields
    "SST-2": (2, _sst2_fields), "IMDb": (2, _imdb_fields), "SNLI": (3, _snli_fields),
    "SciTail": (2, _scitail_fields), "MRPC": (2, _mrpc_fields),
}
TASK_NAMES = (*_FIELDS, "STS-B")


def _classification_rows(rng: random.Random, name: str, n: int) -> list[DemoRow]:
    num_labels, make = _FIELDS[name]
    kinds = _kinds(rng, n, KIND_SHARES[name])
    labels = _balanced(rng, n, num_labels)
    noisy = _noisy_rows(rng, n)
    rows = []
    for row, (kind, label) in enumerate(zip(kinds, labels)):
        fields = make(rng, kind, label)  # the text follows the true label; the written label may be noise
        written = _flip(rng, label, num_labels) if row in noisy else label
        rows.append(DemoRow(fields, str(written), kind, row in noisy))
    return rows


def demo_rows(name: str, split: str, n: int, seed: int = 0) -> list[DemoRow]:
    """The `n` rows of one task's split, with each one's kind: exactly what write_demo_data writes."""
    if name not in TASK_NAMES:
        raise unknown_name("task", name, TASK_NAMES)
    # One stream per (seed, task, split): resizing one split leaves the others unchanged.
    rng = random.Random(f"hashee-demo/{seed}/{name}/{split}")
    rows = _stsb_rows(rng, n) if name == "STS-B" else _classification_rows(rng, name, n)
    if split == "test" and name in CSV_QUOTED_TEST_TASKS:
        rows = [_csv_quoted_row(row, quote_word=i % QUOTED_WORD_EVERY == QUOTED_WORD_EVERY // 2)
                for i, row in enumerate(rows)]
    return rows


def csv_field(text: str) -> str:
    """`text` as a CSV writer with minimal quoting writes it: quoted, inner quotes doubled, when it holds '"'."""
    return '"' + text.replace('"', '""') + '"' if '"' in text else text


def _csv_quoted_row(row: DemoRow, quote_word: bool) -> DemoRow:
    fields = list(row.fields)
    if quote_word:
        first, _, rest = fields[0].partition(" ")
        fields[0] = f'"{first}" {rest}'
    return DemoRow([csv_field(field) for field in fields], row.label, row.kind, row.noisy)


def _test_full_lines(task_name: str, rows: list[DemoRow]) -> list[str]:
    """The labelled test file as the official release writes it: train/dev layout, every field CSV-quoted
    over the text test.tsv holds (MRPC: 'label' header, '-' ids)."""
    task = TASKS[task_name]
    header = list(task.labeled_header)
    if task_name == "MRPC":
        header[task.label] = "label"
        rows = [DemoRow(["-", "-", *row.fields[2:]], row.label, row.kind, row.noisy) for row in rows]
    quoted = [DemoRow([csv_field(field) for field in row.fields], row.label, row.kind, row.noisy) for row in rows]
    return ["\t".join(header), *_lines(task_name, "dev", quoted)[1:]]


def _lines(task_name: str, split: str, rows: list[DemoRow]) -> list[str]:
    task = TASKS[task_name]
    if split == "test":
        lines = ["\t".join(task.test_header)]
        lines += ["\t".join([str(i), *row.fields]) for i, row in enumerate(rows)]
        return lines
    lines = ["\t".join(task.labeled_header)]
    for row in rows:
        # MRPC puts the label first; the others last (TaskSpec.label says where).
        fields = list(row.fields)
        fields.insert(task.label, row.label)
        lines.append("\t".join(fields))
    return lines


def resolve_sizes(size: str = "small", sizes: Mapping | None = None) -> dict[str, dict[str, int]]:
    """Rows per task and split: the `size` preset, then `sizes` overrides, given either per split
    for every task ({"train": 100}) or per task ({"IMDb": {"train": 40}})."""
    if size not in SIZES:
        raise unknown_name("demo data size", size, SIZES)
    result = {name: dict(SIZES[size], **TASK_SIZES.get(size, {}).get(name, {})) for name in TASK_NAMES}
    for key, value in (sizes or {}).items():
        if key in SIZES[size]:
            for per_task in result.values():
                per_task[key] = value
        elif key in result and isinstance(value, Mapping):
            for split, count in value.items():
                if split not in SIZES[size]:
                    raise unknown_name("split", split, SIZES[size])
                result[key][split] = count
        else:
            raise HasheeError(f"demo data sizes: {key!r} is neither a split (train, dev, test) "
                              f"nor a task with a dict of split sizes ({', '.join(result)})")
    for name, per_task in result.items():
        for split, count in per_task.items():
            if not isinstance(count, int) or isinstance(count, bool) or count < 1:
                raise HasheeError(f"demo data sizes: {name}/{split} must be a positive integer, got {count!r}")
    return result


def write_demo_data(out_dir, seed: int = 0, size: str = "small", sizes: Mapping | None = None,
                    tasks=None) -> Path:
    """Write `<out_dir>/<TASK>/{train,dev,test,test_full}.tsv` for the six tasks (or `tasks`); returns
    out_dir. test_full.tsv is the labelled test split (see below)."""
    out_dir = Path(out_dir)
    counts = resolve_sizes(size, sizes)
    for name in tasks or list(TASK_NAMES):
        if name not in TASK_NAMES:
            raise unknown_name("task", name, TASK_NAMES)
        for split, n in counts[name].items():
            rows = demo_rows(name, split, n, seed)
            _write_lines(out_dir / name / f"{split}.tsv", name, _lines(name, split, rows))
            if split == "test":
                # ELUE keeps test labels private; like txsun1997/HashEE's ELUE_data we also write the
                # labelled test set as test_full.tsv (train/dev layout), so the demo can score test;
                # as there, without BOM or CRLF, and CSV-quoted.
                _write_lines(out_dir / name / "test_full.tsv", None, _test_full_lines(name, rows))
    return out_dir


def _write_lines(path: Path, name: str | None, lines: list[str]) -> None:
    assert all("\n" not in line and "\r" not in line for line in lines)
    newline = "\r\n" if name in CRLF_TASKS else "\n"
    text = ("\ufeff" if name in BOM_TASKS else "") + newline.join(lines) + newline
    with atomic_path(path) as tmp:
        tmp.write_bytes(text.encode("utf-8"))

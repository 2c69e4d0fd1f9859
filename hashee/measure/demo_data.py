"""Synthetic ELUE data for offline runs and tests.

THIS DATA IS SYNTHETIC. It is generated from templates so that the whole pipeline runs without
the real ELUE release; numbers measured on it say nothing about the real tasks and are NOT
comparable with the paper's.

Every task is written in exactly the layout of the real release (same headers, test files with
an `index` column and no label), including its quirks: the MRPC and SNLI headers start with a
UTF-8 BOM and the SNLI and SciTail files use CRLF line endings, so every default run exercises
the loader's handling of them. Some IMDb reviews and MRPC sentences contain `"`.

Labels (as in ELUE):
- SST-2, IMDb: 0 negative, 1 positive.
- SNLI: 0 entailment, 1 neutral, 2 contradiction.
- SciTail: 0 neutral, 1 entails.
- MRPC (`Quality`): 0 not a paraphrase, 1 paraphrase.
- STS-B: similarity 0-5 written with three decimals ("3.800").

The tasks are learnable but not trivially: negation ("is not good"), intensifiers, contrast
("..., but ..."), distractor words whose polarity is unrelated to the label, high word overlap
between pair classes, and a fixed 10 % of labels replaced at random (label noise, in every
split) so that no model reaches 100 %. All words come from BERT's uncased vocabulary.
Output is byte-identical for a given seed and sizes.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from pathlib import Path

from hashee.core.errors import HasheeError, unknown_name
from hashee.core.io import atomic_path
from hashee.core.tasks import TASKS

SIZES: dict[str, dict[str, int]] = {
    "small": {"train": 320, "dev": 80, "test": 80},
    "tiny": {"train": 48, "dev": 16, "test": 16},
}
# IMDb reviews are ~5x longer than the other tasks' inputs; fewer keep the small run cheap.
TASK_SIZES: dict[str, dict[str, dict[str, int]]] = {"small": {"IMDb": {"train": 160}}}
LABEL_NOISE = 0.10
BOM_TASKS = ("SNLI", "MRPC")
CRLF_TASKS = ("SNLI", "SciTail")


# --------------------------------------------------------------------------------------------
# helpers

def _sentence(text: str, end: str = ".") -> str:
    return text[0].upper() + text[1:] + end


def _a(word: str) -> str:
    return ("an " if word[0].lower() in "aeiou" else "a ") + word


def _noisy_rows(rng: random.Random, n: int) -> set[int]:
    # An exact share rather than a coin per row, so every split carries the same noise level.
    return set(rng.sample(range(n), round(LABEL_NOISE * n)))


def _balanced(rng: random.Random, n: int, k: int) -> list[int]:
    labels = [i % k for i in range(n)]
    rng.shuffle(labels)
    return labels


def _flip(rng: random.Random, label: int, k: int) -> int:
    return rng.choice([other for other in range(k) if other != label])


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


def _sst_clause(rng: random.Random, positive: bool) -> str:
    subject = rng.choice(_SUBJECTS)
    if rng.random() < 0.12:  # negation flips the adjective's polarity
        intensifier = rng.choice(_MILD_INTENSIFIERS) + " " if rng.random() < 0.3 else ""
        return f"{subject} {rng.choice(_NEGATIONS)} {intensifier}{_adjective(rng, not positive)}"
    intensifier = rng.choice(_INTENSIFIERS) + " " if rng.random() < 0.35 else ""
    return f"{subject} is {intensifier}{_adjective(rng, positive)}"


def _sst_text(rng: random.Random, label: int) -> str:
    positive = label == 1
    form = rng.random()
    if form < 0.68:
        text = _sst_clause(rng, positive)
        if rng.random() < 0.2:
            text = f"{rng.choice(_OPENERS)} {text}"
        if rng.random() < 0.2:
            text = f"{text} {rng.choice(_TAILS)}"
    elif form < 0.77:  # contrast: the clause after "but" decides
        text = f"{_sst_clause(rng, not positive)} , but {_sst_clause(rng, positive)}"
    elif form < 0.8:  # concession: the main clause decides
        text = f"although {_sst_clause(rng, not positive)} , {_sst_clause(rng, positive)}"
    else:
        intensifier = rng.choice(_INTENSIFIERS) + " " if rng.random() < 0.5 else ""
        text = (f"{_a(intensifier + _adjective(rng, positive))} {rng.choice(_NOUNS)} "
                f"about {rng.choice(_TOPICS)}")
    if rng.random() < 0.15 and "about" not in text:
        text = f"{text} , a {rng.choice(_NOUNS)} about {rng.choice(_TOPICS)}"
    return text + " ."


def _sst2_rows(rng: random.Random, n: int) -> list[tuple[list[str], str]]:
    return _classification_rows(rng, n, 2, lambda label: [_sst_text(rng, label)])


# --------------------------------------------------------------------------------------------
# IMDb: long reviews, several sentences, mixed opinions, the final verdict decides

_TITLES = ["The Long River", "Night Train", "A Quiet Place", "The Last Summer", "Blue Harbor",
           "The Iron Road", "Silent Hill Farm", "Winter Garden", "The Red Door", "Lost Island"]
_RELATIVES = ["wife", "husband", "brother", "sister", "father", "mother", "friends", "son"]
_ASPECTS = ["acting", "script", "music", "plot", "ending", "dialogue", "camera work", "lead actor",
            "story", "pacing", "special effects", "villain", "jokes", "costumes"]
_PLURAL_ASPECTS = {"special effects", "jokes", "costumes"}
_JOBS = ["teacher", "doctor", "soldier", "farmer", "writer", "nurse", "police officer", "student"]
_PLACES = ["a small town", "the city", "a fishing village", "an old castle", "the mountains", "a big hotel"]
_IMDB_OPENINGS = [
    'I watched "{title}" last night with my {relative}.',
    'I had heard a lot about "{title}" before I finally saw it.',
    'My {relative} told me to watch "{title}", so I gave it a try.',
    'I rented "{title}" on a rainy weekend.',
    "I saw this film at a festival a few years ago.",
]
_IMDB_FILLERS = [
    "The story follows a young {job} who moves to {place}.",
    "Most of the film takes place in {place}.",
    "It runs for almost two hours.",
    "The main character is a {job} with a secret.",
    "There is also a second story about a {job} and his family.",
    "I will not give away the ending here.",
    "The film was made on a small budget.",
]
_IMDB_POSITIVE_VERDICTS = [
    "Overall, I would recommend it.", "All in all, a {adj} film and well worth your time.",
    "I would happily watch it again.", "{score} out of 10.", "I was not disappointed.",
    "It is not perfect, but I really enjoyed it.", "Go and see it.",
    "In the end, I loved it.",
]
_IMDB_NEGATIVE_VERDICTS = [
    "Overall, I would not recommend it.", "All in all, a {adj} film and a waste of time.",
    "Save your money and skip this one.", "{score} out of 10.", "I was very disappointed.",
    "It has a few good moments, but I did not enjoy it.", "Do not bother.",
    "In the end, I hated it.",
]


def _was(aspect: str) -> str:
    return f"the {aspect} {'were' if aspect in _PLURAL_ASPECTS else 'was'}"


def _imdb_aspect(rng: random.Random, positive: bool) -> str:
    aspect = rng.choice(_ASPECTS)
    if rng.random() < 0.25:
        intensifier = rng.choice(_MILD_INTENSIFIERS) + " " if rng.random() < 0.3 else ""
        return _sentence(f"{_was(aspect)} not {intensifier}{_adjective(rng, not positive)}")
    intensifier = rng.choice(_INTENSIFIERS) + " " if rng.random() < 0.3 else ""
    return _sentence(f"{_was(aspect)} {intensifier}{_adjective(rng, positive)}")


def _word_count(text: str) -> int:
    return len(text.replace("<br />", " ").split())


def _imdb_text(rng: random.Random, label: int) -> str:
    positive = label == 1
    verdicts = _IMDB_POSITIVE_VERDICTS if positive else _IMDB_NEGATIVE_VERDICTS
    verdict = rng.choice(verdicts).format(
        adj=_adjective(rng, positive), score=rng.randint(7, 10) if positive else rng.randint(1, 4))
    target = rng.randint(80, 200)
    sentences = [rng.choice(_IMDB_OPENINGS).format(title=rng.choice(_TITLES), relative=rng.choice(_RELATIVES))]
    budget = target - _word_count(verdict)
    attempts = 0
    while attempts < 200:
        attempts += 1
        kind = rng.random()
        if kind < 0.25:
            candidate = rng.choice(_IMDB_FILLERS).format(job=rng.choice(_JOBS), place=rng.choice(_PLACES))
        elif kind < 0.4:  # a mixed sentence: one aspect each way
            first, second = rng.sample(_ASPECTS, 2)
            candidate = _sentence(f"{_was(first)} {_adjective(rng, not positive)}, but {_was(second)} "
                                  f"{_adjective(rng, positive)}")
        else:  # aspect opinions lean towards the verdict but often disagree with it
            candidate = _imdb_aspect(rng, positive if rng.random() < 0.6 else not positive)
        current = _word_count(" ".join(sentences))
        if current + _word_count(candidate) > budget:
            if current >= budget - 12:
                break
            continue
        sentences.append(candidate)
    if len(sentences) > 3 and rng.random() < 0.5:  # IMDb's own paragraph breaks
        cut = rng.randint(2, len(sentences) - 1)
        sentences[cut - 1] += "<br /><br />" + sentences.pop(cut)
    sentences.append(verdict)
    text = " ".join(sentences)
    words = _word_count(text)
    while words < 80:  # rare: pad with neutral filler to the minimum length
        text = text[: -len(verdict)] + "It runs for almost two hours. " + verdict
        words = _word_count(text)
    return text


def _imdb_rows(rng: random.Random, n: int) -> list[tuple[list[str], str]]:
    return _classification_rows(rng, n, 2, lambda label: [_imdb_text(rng, label)])


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
_EXTRAS = ["tired", "happy", "famous", "married", "waiting for a friend", "on vacation", "late for work"]
_PURPOSES = ["for a contest", "for money", "to relax", "for the first time", "with a friend"]
_NEW_ADJECTIVES = ["tall", "short", "rich", "sad"]
_CONFLICTING = ["sleeping in a bed", "sitting on a couch", "swimming in a pool", "driving a truck"]


def _snli_scene(rng: random.Random) -> dict:
    noun, pronoun, general, opposite = rng.choice(_PEOPLE)
    verb, entailed, where = rng.choice(_ACTIVITIES)
    place_kind = rng.choice(["out", "in"]) if where == "any" else where
    location, side = rng.choice(_LOCATIONS[place_kind])
    other_kind = "in" if place_kind == "out" else "out"
    return {"noun": noun, "pronoun": pronoun, "general": general, "opposite": opposite, "verb": verb,
            "entailed": entailed, "location": location, "side": side,
            "other_location": rng.choice(_LOCATIONS[other_kind])[0],
            "clothes": rng.choice(_CLOTHES) if rng.random() < 0.4 else "",
            "purpose": rng.choice(_PURPOSES) if rng.random() < 0.2 else ""}


def _snli_pair(rng: random.Random, label: int) -> list[str]:
    s = _snli_scene(rng)
    dressed = f"{s['noun']} {s['clothes']}".strip()
    premise = _sentence(" ".join(w for w in [_a(dressed), "is", s["verb"], s["purpose"], s["location"]] if w))
    noun, verb = s["noun"], s["verb"]
    if label == 0:
        options = [f"{_a(s['general'])} is {s['entailed']}", f"{_a(noun)} is {verb}",
                   f"{_a(noun)} is {s['side']}", f"there is {_a(noun)} {s['location']}",
                   f"someone is {s['entailed']} {s['location']}",
                   f"the {noun} is not {rng.choice(_CONFLICTING)}"]  # "not" in an entailment
        if s["purpose"]:  # shares the cue words of neutral pairs
            options.append(f"{_a(noun)} is {verb} {s['purpose']}")
    elif label == 1:
        purposes = [p for p in _PURPOSES if p != s["purpose"]]
        options = [f"{_a(noun)} is {verb} {rng.choice(purposes)}", f"the {noun} is {rng.choice(_EXTRAS)}",
                   f"{_a(rng.choice(_NEW_ADJECTIVES) + ' ' + noun)} is {verb}",
                   f"the {noun} is {verb} with {s['pronoun']} {rng.choice(_RELATIVES)}",
                   f"{_a(s['general'])} is {s['entailed']} before work"]
    else:
        options = [f"{_a(noun)} is {rng.choice(_CONFLICTING)}", f"{_a(s['opposite'])} is {verb} {s['location']}",
                   f"{_a(noun)} is not {verb}", f"nobody is {s['entailed']}",
                   f"{_a(noun)} is {verb} {s['other_location']}",
                   f"the {noun} is {rng.choice(_CONFLICTING)} {rng.choice(_PURPOSES)}"]
    return [premise, _sentence(rng.choice(options))]


def _snli_rows(rng: random.Random, n: int) -> list[tuple[list[str], str]]:
    return _classification_rows(rng, n, 3, lambda label: _snli_pair(rng, label))


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


def _fact_text(subject: str, verb: str, obj: str, rest: str) -> str:
    return " ".join(w for w in [subject, verb, obj, rest] if w)


def _scitail_pair(rng: random.Random, label: int) -> list[str]:
    first, second = rng.sample(range(len(_FACTS)), 2)
    subject, verb, obj, rest, passive, alt_subjects, alt_objects = _FACTS[first]
    fact = _fact_text(subject, verb, obj, rest)
    if rng.random() < 0.25:  # two facts in one premise; the hypothesis is about the first
        other = _FACTS[second]
        premise = _sentence(f"{fact}, and {_fact_text(*other[:4])}")
    else:
        premise = rng.choice(_SCITAIL_WRAPPERS).format(fact=fact)
        premise = premise[0].upper() + premise[1:]
    if label == 1:
        options = [_fact_text(subject, verb, obj, ""), fact, _fact_text(obj, passive, rest, f"by {subject}")]
    else:
        unrelated = [f for i, f in enumerate(_FACTS) if i not in (first, second)]
        options = [_fact_text(rng.choice(alt_subjects), verb, obj, rest),
                   _fact_text(subject, verb, rng.choice(alt_objects), rest),
                   _fact_text(obj, passive, rest, f"by {rng.choice(alt_subjects)}"),
                   _fact_text(*rng.choice(unrelated)[:4])]
    return [premise, _sentence(rng.choice(options))]


def _scitail_rows(rng: random.Random, n: int) -> list[tuple[list[str], str]]:
    return _classification_rows(rng, n, 2, lambda label: _scitail_pair(rng, label))


# --------------------------------------------------------------------------------------------
# MRPC: news sentence pairs; 1 paraphrase, 0 not

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


def _other(rng: random.Random, options: list, current):
    return rng.choice([o for o in options if o != current])


def _mrpc_earnings(rng: random.Random, paraphrase: bool) -> tuple[str, str]:
    company, day, quarter = rng.choice(_COMPANIES), rng.choice(_DAYS), rng.choice(_QUARTERS)
    up = rng.random() < 0.5
    pct, amount = rng.randint(2, 40), f"{rng.randint(1, 90) / 10:.1f}"
    first = f"{company} said on {day} that its {quarter}-quarter profit {rng.choice(_RISE if up else _FALL)} {pct} percent to ${amount} billion."
    if not paraphrase:
        change = rng.randrange(4)
        if change == 0:
            up = not up
        elif change == 1:
            pct = _other(rng, list(range(2, 41)), pct)
        elif change == 2:
            quarter = _other(rng, _QUARTERS, quarter)
        else:
            return first, f"{company} said on {day} that it would cut {rng.randint(2, 9) * 500} jobs in the {quarter} quarter."
    verb = rng.choice(_RISE if up else _FALL)
    second = rng.choice([
        f"{company}'s {quarter}-quarter profit {verb} {pct} percent to ${amount} billion, the company said {day}.",
        f"On {day}, {company} reported that {quarter}-quarter profit {verb} {pct} percent, to ${amount} billion.",
        f"{quarter.capitalize()}-quarter profit at {company} {verb} {pct} percent to ${amount} billion.",
    ])
    return first, second


def _mrpc_statement(rng: random.Random, paraphrase: bool) -> tuple[str, str]:
    (name, pronoun), role, state = rng.choice(_NAMES), rng.choice(_ROLES), rng.choice(_STATES)
    day, action = rng.choice(_DAYS), rng.choice(_ACTIONS)
    first = f"{role} {name} of {state} said on {day} that {pronoun} would {action}."
    would = "would"
    if not paraphrase:
        change = rng.randrange(3)
        if change == 0:
            action = _other(rng, _ACTIONS, action)
        elif change == 1:
            would = "would not"
        else:
            name, pronoun = _other(rng, _NAMES, (name, pronoun))
    second = rng.choice([
        f"{name}, the {state} {role.lower()}, said {day} {pronoun} {would} {action}.",
        f'"I {would} {action}," {role} {name} said on {day}.',
        f"On {day}, {state} {role} {name} announced that {pronoun} {would} {action}.",
    ])
    return first, second


def _mrpc_ruling(rng: random.Random, paraphrase: bool) -> tuple[str, str]:
    state, day, law, ruling = rng.choice(_STATES), rng.choice(_DAYS), rng.choice(_LAWS), rng.choice(_RULINGS)
    first = f"A federal judge in {state} ruled on {day} that {law} was {ruling}."
    if not paraphrase:
        if rng.random() < 0.5:
            ruling = _other(rng, _RULINGS, ruling)
        else:
            law = _other(rng, _LAWS, law)
    second = rng.choice([f"On {day}, a {state} federal judge found {law} {ruling}.",
                         f"{law[0].upper() + law[1:]} is {ruling}, a federal judge in {state} said {day}."])
    return first, second


def _mrpc_accident(rng: random.Random, paraphrase: bool) -> tuple[str, str]:
    (vehicle, event), state, day, killed = rng.choice(_VEHICLES), rng.choice(_STATES), rng.choice(_DAYS), rng.randint(3, 40)
    first = f"At least {killed} people were killed when a {vehicle} {event} in {state} on {day}."
    outcome = "killing"
    if not paraphrase:
        change = rng.randrange(3)
        if change == 0:
            killed = _other(rng, list(range(3, 41)), killed)
        elif change == 1:
            outcome = "injuring"
        else:
            vehicle = _other(rng, [v for v, _ in _VEHICLES], vehicle)
    second = f"A {vehicle} {event} in {state} on {day}, {outcome} at least {killed} people, officials said."
    return first, second


_MRPC_TEMPLATES: list[Callable[[random.Random, bool], tuple[str, str]]] = [
    _mrpc_earnings, _mrpc_statement, _mrpc_ruling, _mrpc_accident]


def _mrpc_rows(rng: random.Random, n: int) -> list[tuple[list[str], str]]:
    def fields(label: int) -> list[str]:
        first, second = rng.choice(_MRPC_TEMPLATES)(rng, label == 1)
        first_id = rng.randint(100000, 3400000)  # MRPC sentence ids: 6-7 digits, near each other
        second_id = first_id + rng.randint(1, 900)
        return [str(first_id), str(second_id), first, second]
    return _classification_rows(rng, n, 2, fields)


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
_CHANGES = [  # how the second caption differs, and the similarity that implies
    ("paraphrase", 4.9), ("drop_place", 4.2), ("change_place", 3.6), ("change_object", 2.8),
    ("change_subject", 2.3), ("change_action", 1.4), ("share_place", 0.7), ("unrelated", 0.1)]


def _sts_caption(subject: str, verb: str, obj: str, place: str) -> str:
    return _sentence(" ".join(w for w in [_a(subject), "is", verb, obj, place] if w))


def _stsb_pair(rng: random.Random, change: str) -> list[str]:
    subject, alias = rng.choice(_STS_SUBJECTS)
    verb, objects = rng.choice(_STS_ACTIONS)
    obj = rng.choice(objects)
    place = rng.choice(_STS_PLACES) if rng.random() < 0.7 else ""
    first = _sts_caption(subject, verb, obj, place)
    if change == "paraphrase":
        second = _sts_caption(alias if rng.random() < 0.5 else subject, _SYNONYM_VERBS[verb], obj, place)
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


def _stsb_rows(rng: random.Random, n: int) -> list[tuple[list[str], str]]:
    changes = [_CHANGES[i % len(_CHANGES)] for i in range(n)]
    rng.shuffle(changes)
    noisy = _noisy_rows(rng, n)
    rows = []
    for row, (change, similarity) in enumerate(changes):
        fields = _stsb_pair(rng, change)
        score = rng.uniform(0.0, 5.0) if row in noisy else similarity + rng.gauss(0.0, 0.3)
        score = round(min(5.0, max(0.0, score)) * 5) / 5  # annotators' averages: multiples of 0.2
        rows.append((fields, f"{score:.3f}"))
    return rows


# --------------------------------------------------------------------------------------------
# assembling and writing

def _classification_rows(rng: random.Random, n: int, num_labels: int,
                         make: Callable[[int], list[str]]) -> list[tuple[list[str], str]]:
    labels = _balanced(rng, n, num_labels)
    noisy = _noisy_rows(rng, n)
    rows = []
    for row, label in enumerate(labels):
        fields = make(label)  # the text follows the true label; the written label may be noise
        written = _flip(rng, label, num_labels) if row in noisy else label
        rows.append((fields, str(written)))
    return rows


_GENERATORS: dict[str, Callable[[random.Random, int], list[tuple[list[str], str]]]] = {
    "SST-2": _sst2_rows, "IMDb": _imdb_rows, "SNLI": _snli_rows, "SciTail": _scitail_rows,
    "MRPC": _mrpc_rows, "STS-B": _stsb_rows,
}


def _lines(task_name: str, split: str, rows: list[tuple[list[str], str]]) -> list[str]:
    task = TASKS[task_name]
    if split == "test":
        lines = ["\t".join(task.test_header)]
        lines += ["\t".join([str(i), *fields]) for i, (fields, _) in enumerate(rows)]
        return lines
    lines = ["\t".join(task.labeled_header)]
    for fields, label in rows:
        # MRPC puts the label first; the others last (TaskSpec.label says where).
        row = list(fields)
        row.insert(task.label, label)
        lines.append("\t".join(row))
    return lines


def resolve_sizes(size: str = "small", sizes: Mapping | None = None) -> dict[str, dict[str, int]]:
    """Rows per task and split: the `size` preset, then `sizes` overrides, given either per split
    for every task ({"train": 100}) or per task ({"IMDb": {"train": 40}})."""
    if size not in SIZES:
        raise unknown_name("demo data size", size, SIZES)
    result = {name: dict(SIZES[size], **TASK_SIZES.get(size, {}).get(name, {})) for name in _GENERATORS}
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
    for name in tasks or list(_GENERATORS):
        if name not in _GENERATORS:
            raise unknown_name("task", name, _GENERATORS)
        for split, n in counts[name].items():
            # One stream per (seed, task, split): resizing one split leaves the others unchanged.
            rng = random.Random(f"hashee-demo/{seed}/{name}/{split}")
            rows = _GENERATORS[name](rng, n)
            _write_lines(out_dir / name / f"{split}.tsv", name, _lines(name, split, rows))
            if split == "test":
                # ELUE keeps test labels private; like txsun1997/HashEE's ELUE_data we also write the
                # labelled test set as test_full.tsv (train/dev layout), so the demo can score test.
                _write_lines(out_dir / name / "test_full.tsv", name, _lines(name, "dev", rows))
    return out_dir


def _write_lines(path: Path, name: str, lines: list[str]) -> None:
    assert all("\n" not in line and "\r" not in line for line in lines)
    newline = "\r\n" if name in CRLF_TASKS else "\n"
    text = ("\ufeff" if name in BOM_TASKS else "") + newline.join(lines) + newline
    with atomic_path(path) as tmp:
        tmp.write_bytes(text.encode("utf-8"))

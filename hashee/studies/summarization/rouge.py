"""ROUGE-1/2/L with the `rouge-score` package, in one stated convention per language.

English (as the BART/CNN-DM literature reports it): Porter stemming; ROUGE-L is **rougeLsum**
(union LCS over sentences), computed on texts split into one sentence per line. A text with
newlines (CNN/DM highlights) is split at them; a text without (model output — BERT-style
tokenizers cannot even produce "\\n" — and Reddit tldrs) is split after ".", "!" or "?" followed
by whitespace, a regex rather than nltk's punkt (no model download; "u.s. army" splits after "u.s.",
which only affects ROUGE-L). Plain rougeL over the whole text is ~10 points lower on CNN/DM.

Chinese: rouge-score's default tokenizer keeps only [a-z0-9] and so scores Chinese 0. Every
non-whitespace character (lower-cased, punctuation included) is one token, as CPT's scripts score
space-separated characters (with the `rouge` package); ROUGE-L is plain rougeL over the whole text.

Scores are per-example F1, averaged, × 100.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rouge_score import rouge_scorer

from hashee.core.errors import HasheeError, unknown_name

LANGUAGES = ("en", "zh")
ROUGE_CONVENTION: dict[str, str] = {
    "en": "English ROUGE: rouge-score, Porter stemming, mean F1 ×100; ROUGE-L is rougeLsum over sentences "
          "(reference lines; model output split after . ! ? by a regex).",
    "zh": "Chinese ROUGE: rouge-score with one token per character (whitespace dropped, punctuation kept, "
          "as CPT's scripts score space-separated characters), mean F1 ×100; ROUGE-L is plain rougeL.",
}

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def split_sentences(text: str) -> list[str]:
    """Sentences of a summary: its lines when it has several, else split after . ! ? + whitespace."""
    text = text.strip()
    parts = text.split("\n") if "\n" in text else _SENTENCE_END.split(text)
    return [p.strip() for p in parts if p.strip()]


class CharTokenizer:
    """A rouge-score tokenizer: every non-whitespace character, lower-cased, is one token."""

    def tokenize(self, text: str) -> list[str]:
        return [c for c in text.lower() if not c.isspace()]


def _scorer(language: str) -> tuple[rouge_scorer.RougeScorer, str]:
    if language == "en":
        return rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeLsum"], use_stemmer=True), "rougeLsum"
    if language == "zh":
        return rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], tokenizer=CharTokenizer()), "rougeL"
    raise unknown_name("ROUGE language", language, LANGUAGES)


def rouge_scores(predictions: Sequence[str], references: Sequence[str], language: str) -> dict[str, float]:
    """{'rouge1', 'rouge2', 'rougeL'}: mean F1 × 100 over the pairs, in `language`'s convention
    (ROUGE_CONVENTION[language]; for English 'rougeL' is rougeLsum)."""
    scorer, l_key = _scorer(language)
    if len(predictions) != len(references):
        raise HasheeError(f"ROUGE: {len(predictions)} prediction(s) but {len(references)} reference(s)")
    if not predictions:
        raise HasheeError("ROUGE: no predictions to score")
    totals = {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}
    for prediction, reference in zip(predictions, references):
        if language == "en":  # rougeLsum reads sentences from newlines
            prediction, reference = "\n".join(split_sentences(prediction)), "\n".join(split_sentences(reference))
        scores = scorer.score(reference, prediction)  # rouge-score's order: (target, prediction)
        totals["rouge1"] += scores["rouge1"].fmeasure
        totals["rouge2"] += scores["rouge2"].fmeasure
        totals["rougeL"] += scores[l_key].fmeasure
    return {key: 100.0 * value / len(predictions) for key, value in totals.items()}


__all__ = ["LANGUAGES", "ROUGE_CONVENTION", "CharTokenizer", "rouge_scores", "split_sentences"]

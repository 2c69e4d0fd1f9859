"""ROUGE conventions, checked against hand-computed answers."""

import pytest
from rouge_score import rouge_scorer

from hashee.core.errors import HasheeError
from hashee.studies.summarization.rouge import ROUGE_CONVENTION, CharTokenizer, rouge_scores, split_sentences


def test_english_unigram_bigram_lcs_by_hand():
    # pred: the cat sat on the mat / ref: the cat lay on the mat
    # unigrams 5 of 6 both ways -> F 5/6; bigrams (the cat, on the, the mat) 3 of 5 -> 3/5; LCS 5 -> 5/6.
    scores = rouge_scores(["the cat sat on the mat"], ["the cat lay on the mat"], "en")
    assert scores == pytest.approx({"rouge1": 500 / 6, "rouge2": 60.0, "rougeL": 500 / 6})


def test_english_uses_stemming():
    # Porter: dogs -> dog, running/runs -> run. Unigrams 3/4 precise, 3/3 recalled -> F 6/7;
    # bigrams: (the dog) 1 of 3 predicted, 1 of 2 reference -> F 2*(1/3)(1/2)/(5/6) = 0.4.
    scores = rouge_scores(["the dogs were running"], ["the dog runs"], "en")
    assert scores == pytest.approx({"rouge1": 600 / 7, "rouge2": 40.0, "rougeL": 600 / 7})


def test_english_rougeL_is_rougeLsum_over_sentences():
    prediction, reference = "d e f . a b c .", "a b c .\nd e f ."
    # Whole-text LCS of "d e f a b c" and "a b c d e f" is 3 of 6 -> plain rougeL 50;
    # per reference sentence the union LCS finds all 3 tokens -> rougeLsum 100.
    plain = rouge_scorer.RougeScorer(["rougeL"]).score(reference, prediction)["rougeL"].fmeasure
    assert plain == pytest.approx(0.5)
    assert rouge_scores([prediction], [reference], "en")["rougeL"] == pytest.approx(100.0)


def test_chinese_characters_are_tokens():
    # pred 王明出版新書 (6 chars) / ref 王明出版了新書 (7): unigrams P 1, R 6/7 -> F 12/13;
    # bigrams 4 shared of 5 and 6 -> F 2*(4/5)(4/6)/(4/5+4/6) = 8/11; LCS 6 -> 12/13.
    scores = rouge_scores(["王明出版新書"], ["王明出版了新書"], "zh")
    assert scores == pytest.approx({"rouge1": 1200 / 13, "rouge2": 800 / 11, "rougeL": 1200 / 13})
    # rouge-score's default tokenizer drops every CJK character: why the convention exists.
    assert rouge_scorer.RougeScorer(["rouge1"]).score("王明出版了新書", "王明出版新書")["rouge1"].fmeasure == 0
    assert CharTokenizer().tokenize("BERT 模型，好") == ["b", "e", "r", "t", "模", "型", "，", "好"]


def test_mean_over_examples_and_empty_prediction():
    scores = rouge_scores(["the cat sat on the mat", ""], ["the cat lay on the mat", "a reference"], "en")
    assert scores["rouge1"] == pytest.approx(500 / 12)
    assert rouge_scores(["王明"], ["王明"], "zh") == pytest.approx({"rouge1": 100.0, "rouge2": 100.0, "rougeL": 100.0})


def test_split_sentences():
    assert split_sentences("a b .\n\nc d .\n") == ["a b .", "c d ."]
    assert split_sentences("the mayor opened a bridge . the police closed a road .") == [
        "the mayor opened a bridge .", "the police closed a road ."]
    assert split_sentences("Is it? Yes! Done.") == ["Is it?", "Yes!", "Done."]
    assert split_sentences("  ") == []


def test_bad_input():
    with pytest.raises(HasheeError, match="2 prediction"):
        rouge_scores(["a", "b"], ["a"], "en")
    with pytest.raises(HasheeError, match="no predictions"):
        rouge_scores([], [], "en")
    with pytest.raises(HasheeError, match="unknown ROUGE language 'fr'"):
        rouge_scores(["a"], ["a"], "fr")
    assert set(ROUGE_CONVENTION) == {"en", "zh"}
    assert "rougeLsum" in ROUGE_CONVENTION["en"] and "character" in ROUGE_CONVENTION["zh"]

"""The prompt-quality scorer: its reasons, its accuracy on the labeled sets, its robustness."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import CASES, REPO
from nodegraph import quality

LABELED = REPO / "tests" / "data" / "prompts_labeled.jsonl"
FRESH = REPO / "tests" / "data" / "prompts_fresh.jsonl"
THRESHOLD = 0.6  # QualityBranch's default


def accuracy(rows: list[dict]) -> float:
    right = sum((quality.score_prompt(row["prompt"]).score >= THRESHOLD) == (row["label"] == "high") for row in rows)
    return right / len(rows)


# --- the labeled set ---------------------------------------------------------------------


def test_labeled_set_rule_and_size():
    first = json.loads(LABELED.read_text(encoding="utf-8").splitlines()[0])
    assert first["rule"].startswith("Labeling rule. A prompt is labeled high when a painter could start without asking questions")
    rows = quality.read_labeled(LABELED)
    assert len(rows) >= 200
    assert len({row["prompt"] for row in rows}) == len(rows)
    assert {row["label"] for row in rows} == {"high", "low"}
    assert sum(row["lang"] == "zh" for row in rows) >= 10
    lengths = [len(row["prompt"].split()) for row in rows if row["lang"] == "en"]
    assert min(lengths) == 1
    assert max(lengths) >= 35
    heldout = [row for row in rows if quality.heldout(row["prompt"])]
    assert 0.2 * len(rows) < len(heldout) < 0.4 * len(rows)


def test_heldout_accuracy_meets_the_target():
    heldout = [row for row in quality.read_labeled(LABELED) if quality.heldout(row["prompt"])]
    assert accuracy(heldout) >= 0.9


def test_fresh_set_accuracy_meets_the_target():
    assert accuracy(quality.read_labeled(FRESH)) >= 0.9


def test_shipped_weights_match_training():
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        from train_quality import fit_logistic
    finally:
        sys.path.pop(0)
    import numpy as np

    train = [row for row in quality.read_labeled(LABELED)
             if not quality.heldout(row["prompt"]) and quality.detect_language(row["prompt"]) == "en"]
    features = np.array([quality.feature_vector(quality.analyze(row["prompt"])) for row in train])
    labels = np.array([row["label"] == "high" for row in train], dtype=float)
    shipped = quality.load_weights()
    assert shipped["features"] == list(quality.FEATURE_NAMES)
    assert fit_logistic(features, labels) == pytest.approx(shipped["text"], abs=1e-4)


# --- reasons ---------------------------------------------------------------------------------


def test_one_word_prompt_reasons():
    result = quality.score_prompt("dog")
    assert result.score < 0.1
    assert result.reasons == [
        "too short: 1 word",
        "no setting or background: say where the subject is",
        "no visual attributes: add at least two of light, color, composition, medium",
    ]


def test_one_attribute_asks_for_another():
    result = quality.score_prompt("a dog in a park at sunset")
    assert result.score < THRESHOLD
    assert result.reasons == ["only 1 visual attribute (light: sunset); add another, e.g. color or composition"]


def test_complete_prompt_reason():
    result = quality.score_prompt("a red ball on green grass under a blue sky, bright daylight, centered")
    assert result.score >= THRESHOLD
    assert result.reasons == ["has a subject, a setting and 5 visual attributes (color, composition, light)"]


def test_quality_tags_without_a_subject_are_called_out():
    result = quality.score_prompt("masterpiece, best quality, ultra detailed, 8k, trending on artstation")
    assert result.score < THRESHOLD
    assert result.reasons[0] == ("no concrete subject: quality tags (8k, artstation, detailed, masterpiece, quality, trending, ultra) "
                                 "say nothing a painter can draw")


def test_chinese_prompt_capped():
    detailed = "一只橘猫趴在木窗台上，午后温暖的阳光，柔和的阴影，水彩画风格"
    result = quality.score_prompt(detailed)
    assert result.score <= quality.LANGUAGE_CAP
    assert result.reasons[0] == "written in Chinese; the image model reads English"
    as_chinese = quality.score_prompt(detailed, target_language="zh")
    assert as_chinese.score >= THRESHOLD
    assert as_chinese.reasons[0].startswith("has a subject, a setting")


def test_english_prompt_for_chinese_target():
    result = quality.score_prompt("a red ball on green grass under a blue sky, bright daylight", target_language="zh")
    assert result.reasons[0] == "written in English; the image model reads Chinese"


def test_repeated_word_and_request_are_reasons():
    assert quality.score_prompt("a " * 40).reasons[0] == "repeats 'a' 40 times"
    assert "reads as a question or an instruction, not a description of a picture" in \
        quality.score_prompt("what is the capital of France?").reasons


def test_adding_setting_and_attributes_raises_the_score():
    steps = ["a fox", "a fox in the snow", "a fox in the snow at dusk", "a fox in the snow at dusk, blue shadows, watercolor"]
    scores = [quality.score_prompt(step).score for step in steps]
    assert scores == sorted(scores)
    assert scores[-1] >= THRESHOLD > scores[-2]


# --- the shared cases and odd input -------------------------------------------------------------


def test_shared_case_prompts():
    for line in (CASES / "prompts.jsonl").read_text(encoding="utf-8").splitlines():
        case = json.loads(line)
        result = quality.score_prompt(case["prompt"])
        assert 0.0 <= result.score <= 1.0
        assert result.reasons
        if not case["prompt"].strip():
            assert result.score == 0.0
            assert result.reasons == ["empty prompt: nothing to draw"]
        if "quality" in case:
            assert (result.score >= THRESHOLD) == (case["quality"] == "high"), case["prompt"]
        if case["lang"] == "zh":
            assert result.score < THRESHOLD


def test_embedding_of_another_size_is_ignored():
    prompt = "a red ball on green grass under a blue sky, bright daylight, centered"
    assert quality.score_prompt(prompt, embedding=[0.1, 0.2]).score == quality.score_prompt(prompt).score


def test_embedding_feature_moves_the_score_a_little():
    weights = quality.load_weights()
    direction = weights["embedding"]["direction"]
    prompt = "a fox in the snow at dusk, blue shadows"
    toward = quality.score_prompt(prompt, embedding=direction).score
    away = quality.score_prompt(prompt, embedding=[-value for value in direction]).score
    assert away < toward < away + 0.3


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_any_text_gets_a_score_in_range(text):
    result = quality.score_prompt(text)
    assert 0.0 <= result.score <= 1.0
    assert all(reason and "\n" not in reason for reason in result.reasons)

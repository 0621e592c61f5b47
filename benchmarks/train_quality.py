"""Fit the prompt-quality model on the labeled set and write nodegraph/data/quality.json.

Two logistic models over the features of nodegraph/quality.py: one on the text features
alone, one that adds the cosine of the MiniLM embedding with a weak-to-strong
direction. The direction is the difference of the class means of the training
embeddings; each training prompt's cosine is computed with a direction fitted without
its fold, so the model does not learn to trust a feature that saw the labels.

Run from the repository root:

    PYTHONPATH=. python benchmarks/train_quality.py [--check]

`--check` prints the held-out figures without writing the weights.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from nodegraph import quality

REPO = Path(__file__).resolve().parent.parent
LABELED = REPO / "tests" / "data" / "prompts_labeled.jsonl"
L2 = 1.0  # ridge penalty on every weight but the bias; keeps the weights small and their signs sensible
FOLDS = 5


def fit_logistic(features: np.ndarray, labels: np.ndarray, l2: float = L2) -> np.ndarray:
    """Fit logistic regression by Newton's method with an L2 penalty (bias unpenalized)."""
    weights = np.zeros(features.shape[1])
    penalty = np.full(features.shape[1], l2)
    penalty[0] = 0.0
    for _ in range(50):
        probabilities = 1 / (1 + np.exp(-features @ weights))
        gradient = features.T @ (probabilities - labels) + penalty * weights
        hessian = (features.T * (probabilities * (1 - probabilities))) @ features + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hessian, gradient)
        weights -= step
        if np.abs(step).max() < 1e-8:
            break
    return weights


def direction(vectors: np.ndarray, labels: np.ndarray) -> np.ndarray:
    difference = vectors[labels == 1].mean(axis=0) - vectors[labels == 0].mean(axis=0)
    return difference / np.linalg.norm(difference)


def metrics(predicted: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    true_positive = int(((predicted == 1) & (labels == 1)).sum())
    accuracy = float((predicted == labels).mean())
    precision = true_positive / max(int((predicted == 1).sum()), 1)
    recall = true_positive / max(int((labels == 1).sum()), 1)
    return {"n": int(len(labels)), "accuracy": round(accuracy, 4), "precision": round(precision, 4), "recall": round(recall, 4)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="print held-out figures, write nothing")
    args = parser.parse_args(argv)

    from nodegraph.embedding import MiniLMEncoder

    # 1. The labeled set, split by the prompt's hash.
    rows = quality.read_labeled(LABELED)
    train = [row for row in rows if not quality.heldout(row["prompt"])]
    test = [row for row in rows if quality.heldout(row["prompt"])]
    y_train = np.array([row["label"] == "high" for row in train], dtype=float)
    y_test = np.array([row["label"] == "high" for row in test], dtype=float)
    # Prompts not in English are capped by the language rule, not by the model: fit on English ones.
    english = np.array([quality.detect_language(row["prompt"]) == "en" for row in train])

    # 2. Text features and the text-only model.
    x_train = np.array([quality.feature_vector(quality.analyze(row["prompt"])) for row in train])
    text_weights = fit_logistic(x_train[english], y_train[english])

    # 3. Embeddings, the cross-fitted cosine feature and the model that uses it.
    encoder = MiniLMEncoder()
    e_train = np.array(encoder.encode([row["prompt"] for row in train]))
    e_test = np.array(encoder.encode([row["prompt"] for row in test]))
    folds = np.arange(len(train)) % FOLDS
    cosine = np.zeros(len(train))
    for fold in range(FOLDS):
        inside = (folds != fold) & english
        cosine[folds == fold] = e_train[folds == fold] @ direction(e_train[inside], y_train[inside])
    full_direction = direction(e_train[english], y_train[english])
    x_train_embedding = np.column_stack([x_train, cosine])
    embedding_weights = fit_logistic(x_train_embedding[english], y_train[english])

    weights = {
        "features": list(quality.FEATURE_NAMES),
        "text": [round(float(value), 6) for value in text_weights],
        "embedding": {"weights": [round(float(value), 6) for value in embedding_weights],
                      "direction": [round(float(value), 6) for value in full_direction]},
        "trained_on": f"{LABELED.relative_to(REPO)}: {len(train)} prompts (held out: {len(test)})",
    }

    # 4. Held-out figures at QualityBranch's default threshold.
    report = {}
    for name, use_embedding in (("text only", False), ("with MiniLM embedding", True)):
        scores = np.array([
            quality.score_prompt(row["prompt"], embedding=list(vector) if use_embedding else None, weights=weights).score
            for row, vector in zip(test, e_test)
        ])
        report[name] = metrics((scores >= 0.6).astype(float), y_test)
        wrong = [(row["prompt"], row["label"], float(score)) for row, score in zip(test, scores)
                 if (score >= 0.6) != (row["label"] == "high")]
        report[name]["wrong"] = wrong
    for name, value in zip(quality.FEATURE_NAMES + ("embedding_cosine",), embedding_weights):
        print(f"  weight {name:18} text {dict(zip(quality.FEATURE_NAMES, text_weights)).get(name, float('nan')):7.3f}"
              f"   with embedding {value:7.3f}")
    print(json.dumps(report, indent=2, ensure_ascii=False))
    if not args.check:
        quality.WEIGHTS_FILE.parent.mkdir(parents=True, exist_ok=True)
        quality.WEIGHTS_FILE.write_text(json.dumps(weights) + "\n", encoding="utf-8")
        print(f"wrote {quality.WEIGHTS_FILE.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Behaviour tests of the model the session pipeline trained and registered (the offline
stand-in, all-MiniLM-L6-v2, fine-tuned on a few hundred real AG News rows), in the manner of
CheckList (Ribeiro et al., 2020): minimum functionality on obvious headlines, invariance to
changes that must not matter, and directional expectations. Each threshold is one a random
or constant model fails: it is right on a quarter of the headlines, and moves a class's
probability the expected way about half the time.
"""
from __future__ import annotations

import numpy as np
import pytest

from agnews.config import LABELS
from agnews.model.logged_model import load_logged_classifier, score_texts

OBVIOUS = {
    "World": ["Peace talks collapse as border clashes between the two nations continue",
              "Prime minister resigns after parliament passes a no-confidence vote",
              "UN Security Council condemns North Korea's missile launch",
              "Earthquake kills hundreds in northern Iran as rescuers search the rubble",
              "Rebels seize provincial capital as government troops retreat",
              "Iraqi election officials count votes amid tight security in Baghdad"],
    "Sports": ["Yankees beat Red Sox 5-3 to take the lead in the series",
               "Federer cruises into the Wimbledon semifinal in straight sets",
               "Striker scores twice as United win the derby",
               "Lakers guard injures ankle and will miss the rest of the season",
               "Woods shoots 66 to lead the Masters after two rounds",
               "Coach fired after his team loses an eighth straight game"],
    "Business": ["Oil prices climb as OPEC cuts production",
                 "Stocks fall on Wall Street as investors worry about interest rates",
                 "Quarterly profit up 20 percent, shares jump in early trading",
                 "Federal Reserve raises interest rates by a quarter point",
                 "Airline files for bankruptcy protection as fuel costs soar",
                 "Retail sales rose more than expected in November, Commerce Department says"],
    "Sci/Tech": ["Microsoft releases a security patch for a flaw in Windows",
                 "NASA spacecraft sends back images from the surface of Mars",
                 "New microchip doubles the battery life of mobile phones",
                 "Scientists discover a new species of frog in the rainforest",
                 "Google adds a new feature to its search engine",
                 "Hackers exploit a web browser vulnerability to spread a virus"],
}

# The same story about other people, places and companies must keep its label.
TEMPLATES = {
    "World": ("{name} wins presidential election in {place} as rivals allege fraud",
              [("Kerry", "Ukraine"), ("Silva", "Brazil"), ("Okafor", "Nigeria"),
               ("Nguyen", "Vietnam")]),
    "Sports": ("{name} signs a four-year contract with the {place}",
               [("Johnson", "Boston Celtics"), ("Garcia", "Chicago Bulls"),
                ("Ivanov", "New York Rangers"), ("Tanaka", "Seattle Mariners")]),
    "Business": ("Shares of {name} fall after the company cuts its profit forecast for {place}",
                 [("Acme Corp.", "Europe"), ("Globex", "Asia"), ("Initech", "Latin America"),
                  ("Northwind Traders", "Canada")]),
    "Sci/Tech": ("{name} unveils a laptop with a faster processor and software for {place}",
                 [("Dell", "students"), ("Lenovo", "gamers"), ("Acer", "designers"),
                  ("Toshiba", "engineers")]),
}

# Adding a clause of a class must not lower that class's probability.
DIRECTIONAL = [
    ("Prime minister resigns after parliament vote", "as shares slump on the stock market",
     "Business"),
    ("Stocks fall as investors worry about interest rates", "before the World Cup final",
     "Sports"),
    ("Striker scores twice in derby win", "as troops clash with rebels near the border",
     "World"),
    ("Oil prices climb as OPEC cuts production", "says NASA in a software update for its probe",
     "Sci/Tech"),
    ("New microchip doubles battery life", "and the company's quarterly profit rose 20 percent",
     "Business"),
    ("Rebels seize provincial capital", "as the home team wins the championship game",
     "Sports"),
    ("Federer wins Wimbledon semifinal", "after the software crashed the internet servers",
     "Sci/Tech"),
    ("Company reports record quarterly earnings", "amid a war and a UN peace conference",
     "World"),
]


@pytest.fixture(scope="module")
def classify(session_pipeline):
    """Texts -> class probabilities, with the registered champion."""
    with session_pipeline.tracking():
        model = load_logged_classifier(session_pipeline.champion_uri, "fp32")

    def probabilities(texts: list[str]) -> np.ndarray:
        return score_texts(model, texts, 32, None)
    return probabilities


def labels_of(probs: np.ndarray) -> list[str]:
    return [LABELS[i] for i in probs.argmax(axis=1)]


def test_minimum_functionality_obvious_headlines_of_each_class(classify):
    texts = [t for texts in OBVIOUS.values() for t in texts]
    truth = [label for label, texts in OBVIOUS.items() for _ in texts]
    predicted = labels_of(classify(texts))
    right = [p == t for p, t in zip(predicted, truth, strict=True)]
    assert np.mean(right) >= 0.8, list(zip(texts, predicted, strict=True))
    for label in LABELS:  # no class left behind
        assert sum(r for r, t in zip(right, truth, strict=True) if t == label) >= 4, label


def test_invariance_casing_moves_nothing(classify):
    """The vocabulary is uncased, so casing must not change a probability: a cased tokenizer
    or model swapped in would."""
    texts = [texts[0] for texts in OBVIOUS.values()]
    base = classify(texts)
    for changed in ([t.upper() for t in texts], [t.lower() for t in texts]):
        np.testing.assert_allclose(classify(changed), base, atol=1e-5)


def test_invariance_names_and_places_keep_the_right_label(classify):
    kept = 0
    for label, (template, fills) in TEMPLATES.items():
        texts = [template.format(name=name, place=place) for name, place in fills]
        predicted = labels_of(classify(texts))
        kept += all(p == label for p in predicted)
    assert kept >= 3, f"only {kept} of {len(TEMPLATES)} stories kept their label"


def test_directional_a_clause_of_a_class_raises_its_probability(classify):
    bases = classify([base for base, _, _ in DIRECTIONAL])
    added = classify([f"{base} {clause}" for base, clause, _ in DIRECTIONAL])
    moved = [added[i, LABELS.index(label)] > bases[i, LABELS.index(label)]
             for i, (_, _, label) in enumerate(DIRECTIONAL)]
    assert sum(moved) >= len(DIRECTIONAL) - 1, moved

"""The model card: Hugging Face metadata that parses, with the test metrics, their intervals
and row counts exactly as logged, and the prose sections a reader of a version needs."""
from __future__ import annotations

import yaml
from huggingface_hub import ModelCard

from agnews.hub import is_hub_id
from agnews.registry.card import CardFacts, card_text
from agnews.registry.versions import base_license

METRICS = {"test_accuracy": 0.90612, "test_accuracy_ci_low": 0.8772, "test_accuracy_ci_high": 0.929,
           "test_f1": 0.9051, "test_f1_ci_low": 0.879, "test_f1_ci_high": 0.93,
           "test_f1_macro": 0.9049, "test_f1_macro_ci_low": 0.878, "test_f1_macro_ci_high": 0.929,
           "test_loss": 0.3}


def facts(**changes) -> CardFacts:
    values = dict(
        name="agnews-classifier", version="3", alias="challenger",
        decision="McNemar's exact one-sided test gives p = 0.31 >= 0.05: the two could not be "
                 "told apart", base_model="huawei-noah/TinyBERT_General_4L_312D",
        base_revision="34707a33cd59a94ecde241ac209bf35103691b43", data="fancyzhx/ag_news",
        data_revision="eb185aade064a813bc0b7f42de02595523103ca4",
        rows={"train": 1000, "val": 200, "test": 500}, metrics=METRICS,
        params={"epochs": "2", "learning_rate": "0.00015", "seed": "42", "run_name": "x"},
        compute={"device": "AMD EPYC, 2 threads", "precision_train": "bf16",
                 "precision_score": "bf16", "precision_reason": "measured faster",
                 "scored_on": "AMD EPYC, 2 threads", "rows_per_second": 171.4},
        license="apache-2.0", runs={"train": "r1", "evaluate": "e1"})
    return CardFacts(**{**values, **changes})


def front_matter(text: str) -> dict:
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_the_card_metadata_parses_and_holds_the_logged_metrics_with_intervals():
    text = card_text(facts())
    meta = front_matter(text)
    assert meta["language"] == "en" and meta["license"] == "apache-2.0"
    assert meta["library_name"] == "transformers" and meta["datasets"] == ["fancyzhx/ag_news"]
    assert meta["base_model"] == "huawei-noah/TinyBERT_General_4L_312D"
    [result] = meta["model-index"][0]["results"]
    assert result["task"]["type"] == "text-classification"
    assert result["dataset"] == {"type": "fancyzhx/ag_news", "name": "AG News", "split": "test",
                                 "revision": "eb185aade064a813bc0b7f42de02595523103ca4"}
    got = {m["name"]: m for m in result["metrics"]}
    for key, name in (("test_accuracy", "Accuracy"), ("test_f1", "F1 (weighted)"),
                      ("test_f1_macro", "F1 (macro)")):
        assert got[name]["value"] == round(METRICS[key], 4)
        assert got[name]["args"] == {"ci_95_low": METRICS[f"{key}_ci_low"],
                                     "ci_95_high": METRICS[f"{key}_ci_high"], "rows": 500}
    # the Hub's own parser reads the same results back
    parsed = ModelCard(text).data.eval_results
    assert [(r.metric_name, r.metric_value) for r in parsed] == [
        ("Accuracy", 0.9061), ("F1 (weighted)", 0.9051), ("F1 (macro)", 0.9049)]


def test_the_card_says_what_a_reader_of_the_version_needs():
    text = card_text(facts())
    for heading in ("Intended use", "Results", "Limitations", "Training data",
                    "Training settings", "Hardware and precision", "Promotion decision"):
        assert f"\n## {heading}\n" in text, heading
    assert "| Accuracy | 0.9061 (95% CI 0.8772-0.9290) |" in text
    assert "at revision `34707a33cd59a94ecde241ac209bf35103691b43`" in text
    assert "1000 training rows and 200 validation rows" in text
    assert "| learning_rate | 0.00015 |" in text and "run_name" not in text
    assert "Trained on `AMD EPYC, 2 threads` in bf16" in text
    assert "171 rows/s on `AMD EPYC, 2 threads`" in text
    assert "\nMcNemar's exact one-sided test gives p = 0.31 >= 0.05: the two could not be told " \
           "apart.\n" in text
    assert "non-commercial research" in text


def test_local_data_and_models_are_named_but_not_claimed_as_hub_ids(tmp_path):
    meta = front_matter(card_text(facts(data=str(tmp_path), base_model=str(tmp_path),
                                        base_revision="", data_revision="")))
    assert "datasets" not in meta and "base_model" not in meta
    assert meta["model-index"][0]["results"][0]["dataset"]["type"] == "local"
    assert not is_hub_id(str(tmp_path)) and is_hub_id("fancyzhx/ag_news")


def test_a_metric_logged_without_its_interval_is_left_out_of_the_index():
    metrics = {k: v for k, v in METRICS.items() if not k.startswith("test_f1_macro")}
    names = [m["name"] for m in front_matter(card_text(facts(metrics=metrics)))
             ["model-index"][0]["results"][0]["metrics"]]
    assert names == ["Accuracy", "F1 (weighted)"]


def test_the_base_models_license_is_read_from_its_own_card(tmp_path):
    (tmp_path / "README.md").write_text("---\nlicense: mit\n---\n# a model\n")
    assert base_license(str(tmp_path), "") == "mit"
    (tmp_path / "README.md").write_text("# no metadata\n")
    assert base_license(str(tmp_path), "") == "unknown"
    assert base_license("nobody/not-in-the-cache", "main") == "unknown"
    (tmp_path / "README.md").unlink()  # a model folder without a card of its own
    assert base_license(str(tmp_path), "") == "unknown"

"""What the report says, section by section, from `ReportFacts` gathered by `agnews.report.facts`.

Sections: summary (headline numbers and a verdict), data, process (every parameter),
training curves, evaluation, errors, search (for a model a sweep chose), model registry,
conclusions, limitations, reproduce. Every number is
one the steps logged; every judgement comes from `agnews.report.conclusions`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from agnews.config import LABELS
from agnews.evaluation.intervals import metric_key, wilson
from agnews.report.conclusions import (
    calibration_verdict,
    class_verdict,
    comparison_verdict,
    confusion_verdict,
    convergence_verdict,
    fit_verdict,
    fmt,
    still_improving,
)
from agnews.report.document import Block, Bullets, Code, Heading, Image, Para, Table
from agnews.report.wording import t

CURVE_COLUMNS = ("train_loss", "val_loss", "train_accuracy", "val_accuracy", "train_f1", "val_f1")
# The revisions are the commits main pinned (the step runs record them), so the command
# reruns on exactly the data and model this run read, even after the Hub has moved on.
MAIN_PARAMS = ("data", "data_revision", "model", "model_revision", "train_size", "val_size",
               "test_size", "max_length", "epochs", "train_batch_size", "eval_batch_size",
               "micro_batch_tokens", "learning_rate", "label_smoothing", "freeze_embeddings",
               "freeze_layers", "seed",
               "log_every_steps", "select_best", "precision",
               "registered_model", "min_test_accuracy", "min_test_f1", "gate_on", "promote",
               "promote_alpha", "promote_margin", "report_lang")
HEADLINE = ("accuracy", "f1", "precision", "recall", "roc_auc", "ece", "loss")


@dataclass
class ReportFacts:
    params: dict[str, str]                 # every step's parameters, merged
    metrics: dict[str, dict[str, float]]   # step name -> its final metrics
    run_ids: dict[str, str]                # step name -> run id
    history: pd.DataFrame                  # one row per epoch: epoch, train_*, val_*
    per_class: pd.DataFrame                # class, precision, recall, f1, support
    confusion: np.ndarray                  # counts, rows = true class
    class_balance: pd.DataFrame            # split, class, rows, share
    mistakes: pd.DataFrame                 # text, true, predicted, confidence
    mean_confidence: float                 # mean top-class probability on the test rows
    previous: dict | None = None           # {"run_id", "metrics"} of the previous evaluate run
    registry: dict[str, str] = field(default_factory=dict)  # the register run's decision tags
    compute: dict[str, str] = field(default_factory=dict)   # train's device and precisions
    images: dict[str, bytes] = field(default_factory=dict)  # file name -> PNG
    lang: str = "en"
    search: dict | None = None             # the sweep that chose this model (`search_facts`)


def reproduce_command(params: dict[str, str]) -> str:
    args = " ".join(f"-P {k}={params[k]}" for k in MAIN_PARAMS if k in params)
    return f"mlflow run . -e main --env-manager local {args}"


def _images(f: ReportFacts, *names: tuple[str, str]) -> list[Block]:
    return [Image(n, t(f.lang, cap), f.images[n]) for n, cap in names if n in f.images]


def interval(metrics: dict[str, float], key: str) -> str:
    """`key`'s logged 95% interval as "low-high", or "-" for a run that logged none."""
    low, high = metrics.get(f"{key}_ci_low"), metrics.get(f"{key}_ci_high")
    return "-" if low is None or high is None else f"{fmt(low)}-{fmt(high)}"


def _best_epoch(f: ReportFacts) -> int:
    return int(f.metrics["train"].get("best_epoch", len(f.history)))


def conclusions(f: ReportFacts) -> list[str]:
    ev, lang = f.metrics["evaluate"], f.lang
    out = [fit_verdict(f.history, _best_epoch(f), lang), convergence_verdict(f.history, lang),
           confusion_verdict(f.confusion, lang), class_verdict(f.per_class, lang)]
    if "test_ece" in ev:
        out.append(calibration_verdict(ev["test_ece"], f.mean_confidence, ev["test_accuracy"],
                                       lang))
    out.append(comparison_verdict(ev, f.previous, lang))
    return [c for c in out if c]


def limitations(f: ReportFacts) -> list[str]:
    lang, ing, ev = f.lang, f.metrics["ingest"], f.metrics["evaluate"]
    train_rows = int(ing.get("train_rows", 0))
    n_test = int(ing.get("test_rows", 0))
    improving = still_improving(f.history)
    if "test_accuracy_ci_low" in ev:
        low, high = ev["test_accuracy_ci_low"], ev["test_accuracy_ci_high"]
    else:  # a run logged before evaluate logged intervals
        low, high = wilson(round(ev["test_accuracy"] * n_test), max(n_test, 1))
    out = [t(lang, "lim_sample", train_rows=train_rows,
             pool_rows=int(ing.get("source_train_rows", train_rows))),
           t(lang, "lim_test", n=n_test, low=fmt(low), high=fmt(high))]
    if improving is not None:
        out.append(t(lang, "lim_epochs", epochs=len(f.history), convergence=t(
            lang, "lim_epochs_more" if improving else "lim_epochs_done")))
    truncated = f.metrics["tokenize"].get("truncated_share", 0)
    out.append(t(lang, "lim_truncation", share=f"{truncated:.1%}",
                 max_length=f.params.get("max_length")))
    return out


def _paired(f: ReportFacts) -> dict[str, str]:
    """The paired comparison's sentences, from the register run's numbers."""
    lang, reg, p = f.lang, f.metrics.get("register", {}), f.params
    if "paired_rows" not in reg:
        return {"paired": "", "verdict": ""}
    only_candidate = int(reg["only_candidate_right"])
    only_champion = int(reg["only_champion_right"])
    verdict = f.registry.get("promotion_verdict", "")
    margin = float(p.get("promote_margin", 0.01)) * 100
    return {"paired": t(lang, "paired", champion=f.registry.get("champion_version"),
                        rows=int(reg["paired_rows"]), disagree=only_candidate + only_champion,
                        only_candidate=only_candidate, only_champion=only_champion),
            "verdict": t(lang, f"verdict_{verdict}", p=f"{reg['promotion_p']:.3g}",
                         alpha=p.get("promote_alpha", "0.05"), margin=f"{margin:g}")
            if verdict else ""}


def registry_section(f: ReportFacts) -> list[Block]:
    """What the register step decided, with the numbers it decided on."""
    lang, tags, reg = f.lang, f.registry, f.metrics.get("register", {})
    outcome = tags.get("outcome")
    if outcome is None:
        return []
    values = {"model": tags.get("registered_model", ""), "version": tags.get("registered_version"),
              "champion": tags.get("champion_version"), "reasons": tags.get("decision", ""),
              "min_acc": f.params.get("min_test_accuracy"), "min_f1": f.params.get("min_test_f1"),
              **(_paired(f) if outcome in ("champion", "challenger") else {})}
    blocks: list[Block] = [Heading(t(lang, "h_registry")),
                           Para(t(lang, f"registry_{outcome}", **values))]
    if tags.get("model_card"):
        blocks.append(Para(t(lang, "model_card", uri=tags["model_card"])))
    if "champion_test_f1" in reg:
        ev = f.metrics["evaluate"]
        blocks.append(Table([t(lang, "metric"), t(lang, "candidate"), t(lang, "interval"),
                             t(lang, "champion")],
                            [[m, fmt(reg[f"candidate_test_{m}"]), interval(ev, f"test_{m}"),
                              fmt(reg[f"champion_test_{m}"])] for m in ("f1", "accuracy")]))
    return blocks


def search_section(f: ReportFacts) -> list[Block]:
    """How the sweep that chose this model went, with its plots."""
    if f.search is None:
        return []
    lang, s = f.lang, f.search
    return [Heading(t(lang, "h_search")),
            Para(t(lang, "search", study=s["study"], trials=s["trials"], complete=s["complete"],
                   pruned=s["pruned"], failed=s["failed"], best=s["best"],
                   val_loss=fmt(s["val_loss"]), val_acc=fmt(s["val_accuracy"]))),
            Para(t(lang, "search_params")),
            Table([t(lang, "parameter"), t(lang, "value")],
                  [[k, v] for k, v in sorted(s["params"].items())]),
            *_images(f, *((f"search_{n}.png", f"cap_search_{n}")
                          for n in ("history", "val_loss", "importances", "parallel")))]


def summary_section(f: ReportFacts) -> list[Block]:
    lang, ev, p, ingest = f.lang, f.metrics["evaluate"], f.params, f.metrics["ingest"]
    return [
        Heading(t(lang, "title"), 1),
        Heading(t(lang, "h_summary")),
        Table([t(lang, "metric"), "test", t(lang, "interval")],
              [[m, fmt(ev[f"test_{m}"]), interval(ev, f"test_{m}")]
               for m in HEADLINE if f"test_{m}" in ev]),
        Para(t(lang, "summary", model=p.get("model"), train_rows=int(ingest.get("train_rows", 0)),
               epochs=len(f.history), best=_best_epoch(f), acc=fmt(ev["test_accuracy"]),
               f1=fmt(ev["test_f1"]), test_rows=int(ingest.get("test_rows", 0)))
             + f" {t(lang, 'verdict')} " + " ".join(conclusions(f)[:2])),
    ]


def data_section(f: ReportFacts) -> list[Block]:
    lang, p, ingest = f.lang, f.params, f.metrics["ingest"]
    return [
        Heading(t(lang, "h_data")),
        Para(t(lang, "data", source=p.get("data"), seed=p.get("seed"),
               overlap=int(ingest.get("train_test_text_overlap", 0)),
               truncated=f"{f.metrics['tokenize'].get('truncated_share', 0):.1%}",
               max_length=p.get("max_length"))),
        Table([t(lang, "split")] + list(LABELS) + [t(lang, "total")],
              [[split] + [str(int(r)) for r in g.set_index("class").reindex(LABELS)["rows"]]
               + [str(int(g["rows"].sum()))]
               for split, g in f.class_balance.groupby("split", sort=False)]),
        *_images(f, ("class_balance.png", "cap_balance"), ("text_length_words.png", "cap_words"),
                 ("text_length_tokens.png", "cap_tokens")),
    ]


def process_section(f: ReportFacts) -> list[Block]:
    lang, p, best = f.lang, f.params, _best_epoch(f)
    compute = ([Para(t(lang, "compute", device=f.compute["device"],
                       train=f.compute["precision_train"], score=f.compute["precision_score"],
                       reason=f.compute["precision_reason"]))]
               if "precision_reason" in f.compute else [])
    if "scorer" in f.compute:  # runs of train before the parity gate have no scorer
        compute.append(Para(t(lang, "scorer", scorer=f.compute["scorer"],
                              reason=f.compute.get("scorer_reason", ""))))
    return [
        Heading(t(lang, "h_process")),
        Para(t(lang, "process", model=p.get("model"), lr=p.get("learning_rate"),
               batch=p.get("train_batch_size"), epochs=len(f.history), best=best,
               rule=t(lang, "rule_best" if p.get("select_best", "True").lower() == "true"
                      else "rule_last"))),
        Table([t(lang, "parameter"), t(lang, "value")],
              [[k, p[k]] for k in MAIN_PARAMS if k in p]),
        *compute,
        Heading(t(lang, "h_curves")),
        Para(t(lang, "curves")),
        Table([t(lang, "epoch")] + list(CURVE_COLUMNS),
              [[str(int(r["epoch"])) + (" *" if int(r["epoch"]) == best else "")]
               + [fmt(r[c]) for c in CURVE_COLUMNS] for _, r in f.history.iterrows()]),
        *_images(f, ("loss_curves.png", "cap_loss"), ("metric_evolution.png", "cap_metrics"),
                 ("learning_rate.png", "cap_lr")),
    ]


def evaluation_section(f: ReportFacts) -> list[Block]:
    lang, ev = f.lang, f.metrics["evaluate"]
    blocks: list[Block] = [
        Heading(t(lang, "h_evaluation")),
        Table([t(lang, "class"), "precision", "recall", f"recall, {t(lang, 'interval')}", "f1",
               t(lang, "support")],
              [[r["class"], fmt(r["precision"]), fmt(r["recall"]),
                interval(ev, f"test_recall_{metric_key(r['class'])}"), fmt(r["f1"]),
                str(int(r["support"]))] for _, r in f.per_class.iterrows()]),
        *_images(f, ("confusion_matrix.png", "cap_confusion"), ("final_metrics.png", "cap_final"),
                 ("per_class_metrics.png", "cap_per_class"), ("roc_pr_curves.png", "cap_roc"),
                 ("reliability_diagram.png", "cap_reliability")),
        Heading(t(lang, "h_errors")),
    ]
    wrong = int(f.confusion.sum() - np.trace(f.confusion))
    if f.mistakes.empty:
        blocks.append(Para(t(lang, "no_errors")))
    else:
        blocks += [Para(t(lang, "errors", n=len(f.mistakes), wrong=wrong,
                          total=int(f.confusion.sum()))),
                   Table([t(lang, "text"), t(lang, "true"), t(lang, "predicted"),
                          t(lang, "confidence")],
                         [[_clip(r["text"]), r["true"], r["predicted"], fmt(r["confidence"])]
                          for _, r in f.mistakes.iterrows()])]
    return blocks + _images(f, ("confidence_histogram.png", "cap_confidence"))


def closing_section(f: ReportFacts) -> list[Block]:
    lang = f.lang
    return [Heading(t(lang, "h_conclusions")), Bullets(conclusions(f)),
            Heading(t(lang, "h_limitations")), Bullets(limitations(f)),
            Heading(t(lang, "h_reproduce")), Para(t(lang, "reproduce")),
            Code(reproduce_command(f.params)),
            Table([t(lang, "step"), t(lang, "run_id")], [[k, v] for k, v in f.run_ids.items()])]


def build_report(f: ReportFacts) -> list[Block]:
    """The report's blocks, section by section, in the order a reader wants them."""
    return [*summary_section(f), *data_section(f), *process_section(f),
            *evaluation_section(f), *search_section(f), *registry_section(f),
            *closing_section(f)]


def _clip(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"

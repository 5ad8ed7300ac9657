"""The drift checks: each compares a batch of new texts (and the model's answers on them) with
the model's reference and returns a `Check`, a statistic with its threshold and verdict.

Evidently, the library the design first named for this, does not import with pandas 3
(0.7.23 reaches for a pandas internal that pandas 3 removed), so the checks are written here
on scipy and scikit-learn, after Evidently's methods: a two-sample Kolmogorov-Smirnov test
for numeric distributions, a chi-squared test with the population stability index for the
class mix, and for the vocabulary a classifier trained to tell reference texts from batch
texts, whose cross-validated ROC AUC is compared with what the same classifier reaches on
shuffled labels.
"""
from __future__ import annotations

# Deferred imports: scipy and scikit-learn's text classifier load with the check that uses them,
# so a test or benchmark of one check does not pay for all.
from dataclasses import dataclass

import numpy as np

ALPHA = 0.01  # each test's false-alarm rate: five tests flag an unchanged batch ~5% of the time
MIN_PSI = 0.1  # a class-mix change must also be material (PSI 0.1-0.25 reads "moderate")


@dataclass(frozen=True)
class Check:
    """One measure: `value` (logged as `drift_<name>`), the `threshold` it is judged against,
    the verdict, and, when it says drift, the reason in one sentence."""

    name: str
    value: float
    threshold: float
    drift: bool
    reason: str = ""
    detail: dict | None = None  # further numbers worth logging (`drift_<name>_<key>`)


def ks_check(name: str, what: str, reference: np.ndarray, batch: np.ndarray,
             alpha: float = ALPHA) -> Check:
    """Whether `batch` is drawn from another distribution than `reference` (two-sample KS)."""
    from scipy.stats import ks_2samp

    result = ks_2samp(reference, batch)
    drift = bool(result.pvalue < alpha)
    reason = (f"{what} differs from the reference (KS {result.statistic:.2f}, p "
              f"{result.pvalue:.1e}; mean {np.mean(batch):.2f} vs {np.mean(reference):.2f})"
              if drift else "")
    return Check(name, float(result.pvalue), alpha, drift, reason,
                 {"statistic": float(result.statistic), "batch_mean": float(np.mean(batch)),
                  "reference_mean": float(np.mean(reference))})


def psi(reference_share: np.ndarray, batch_share: np.ndarray, floor: float = 1e-4) -> float:
    """Population stability index between two distributions over the same classes."""
    ref = np.clip(reference_share, floor, None)
    cur = np.clip(batch_share, floor, None)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def class_mix_check(reference_counts: np.ndarray, batch_counts: np.ndarray,
                    names: tuple[str, ...], alpha: float = ALPHA) -> Check:
    """Whether the predicted class mix moved: a chi-squared test of the batch's counts against
    the reference's shares, and a PSI large enough to matter."""
    from scipy.stats import chisquare

    ref_share = (reference_counts + 0.5) / (reference_counts + 0.5).sum()  # no class at 0
    n = batch_counts.sum()
    p = float(chisquare(batch_counts, ref_share * n).pvalue)
    index = psi(ref_share, batch_counts / n)
    drift = p < alpha and index >= MIN_PSI
    shares = ", ".join(f"{c} {s:.0%}" for c, s in zip(names, batch_counts / n, strict=True))
    reason = (f"the predicted class mix moved (PSI {index:.2f}, p {p:.1e}): {shares}"
              if drift else "")
    return Check("class_mix", index, MIN_PSI, drift, reason, {"p": p})


def piece_share(sequences: list[list[int]], known: set[int], unk_id: int | None) -> float:
    """The share of word pieces that are the unknown token or absent from `known`."""
    pieces = np.fromiter((i for seq in sequences for i in seq), dtype=np.int64)
    if pieces.size == 0:
        return 0.0
    strange = ~np.isin(pieces, np.fromiter(known, dtype=np.int64))
    if unk_id is not None:
        strange |= pieces == unk_id
    return float(strange.mean())


def unseen_pieces_check(train_ids: list[list[int]], holdout_ids: list[list[int]],
                        batch_ids: list[list[int]], unk_id: int | None) -> Check:
    """Word pieces the model never saw in training (or [UNK]): their share in the batch
    against their share in held-out reference texts (new words always occur; a batch in
    another language or domain brings many more). Drift when the share at least doubles
    and grows by 2 points."""
    known = {i for seq in train_ids for i in seq}
    expected = piece_share(holdout_ids, known, unk_id)
    share = piece_share(batch_ids, known, unk_id)
    limit = max(2 * expected, expected + 0.02)
    drift = share > limit
    reason = (f"{share:.1%} of the batch's word pieces never occurred in training (reference "
              f"{expected:.1%})" if drift else "")
    return Check("unseen_pieces", share, limit, drift, reason, {"reference": expected})


def domain_classifier_check(reference: list[str], batch: list[str], seed: int,
                            permutations: int = 20, folds: int = 5) -> Check:
    """How well a TF-IDF logistic regression tells batch texts from reference texts (ROC AUC,
    cross-validated): about 0.5 when they are alike. The threshold is the 95th percentile of
    the AUC the same model reaches with the labels shuffled, so it adapts to the sizes.
    The words that most mark the batch are in the detail. A batch of one text is not
    judged (NaN)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    folds = min(folds, len(batch), len(reference))
    if folds < 2:  # nothing to cross-validate on
        return Check("vocabulary_auc", float("nan"), float("nan"), False, "",
                     {"batch_words": []})
    texts = list(reference) + list(batch)
    y = np.r_[np.zeros(len(reference)), np.ones(len(batch))]
    vectorizer = TfidfVectorizer(min_df=2, sublinear_tf=True)
    x = vectorizer.fit_transform(texts)
    model = LogisticRegression(max_iter=1000, class_weight="balanced")
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)

    def auc(labels: np.ndarray) -> float:
        scores = cross_val_predict(model, x, labels, cv=cv, method="predict_proba")[:, 1]
        return float(roc_auc_score(labels, scores))

    value = auc(y)
    rng = np.random.default_rng(seed)
    chance = [auc(rng.permutation(y)) for _ in range(permutations)]
    limit = float(np.quantile(chance, 0.95))
    drift = value > limit
    weights = model.fit(x, y).coef_[0]
    words = np.asarray(vectorizer.get_feature_names_out())[np.argsort(weights)[::-1][:10]]
    reason = (f"a classifier tells batch texts from reference texts (ROC AUC {value:.2f}, chance "
              f"up to {limit:.2f}); words that mark the batch: {', '.join(words[:6])}"
              if drift else "")
    return Check("vocabulary_auc", value, limit, drift, reason, {"batch_words": list(words)})


def accuracy_check(correct: np.ndarray, reference_accuracy: float, alpha: float = ALPHA) -> Check:
    """With labels: whether the batch's accuracy is below the model's test accuracy by more
    than chance (one-sided binomial test)."""
    from scipy.stats import binomtest

    accuracy = float(np.mean(correct))
    p = float(binomtest(int(correct.sum()), len(correct), reference_accuracy,
                        alternative="less").pvalue)
    drift = p < alpha
    reason = (f"accuracy fell to {accuracy:.3f} from the test accuracy {reference_accuracy:.3f} "
              f"(p {p:.1e})" if drift else "")
    return Check("accuracy", accuracy, reference_accuracy, drift, reason, {"p": p})

"""The drift checks: each compares a batch of new texts (and the model's answers on them) with
the model's reference as a two-sample test, and the batch's checks are judged together.

Every check is a test of "the batch comes from where the reference came from" that uses the
sampling error of both sides (the reference is a sample too): two-sample Kolmogorov-Smirnov
for text length and confidence, a Mann-Whitney test of the per-text share of word pieces
training never had, a classifier two-sample test for the vocabulary (TF-IDF logistic
regression fitted on half of both sides, its held-out scores compared with a Mann-Whitney
test), a chi-squared test of homogeneity for the predicted class mix, and, with labels, a
score test of two independent proportions for accuracy. `judge` then holds the whole batch's
false-alarm rate at `alpha` with Holm's step-down correction (statsmodels), and two checks
also need an effect large enough to matter (a PSI for the class mix, a rise in unseen pieces).

Evidently, the library the design first named for this, does not import with pandas 3, and
its defaults (fixed thresholds against the reference as if it were exact) are what this
replaces; the tests come from scipy and statsmodels.
"""
from __future__ import annotations

# Deferred imports: scipy, statsmodels and scikit-learn's text classifier load with the check
# that uses them, so a test or benchmark of one check does not pay for all.
from dataclasses import dataclass, replace

import numpy as np

ALPHA = 0.05  # the family-wise false-alarm rate of one batch's checks (`-P alpha=`)
MIN_PSI = 0.1  # a class-mix change must also be material (PSI 0.1-0.25 reads "moderate")
MIN_UNSEEN_RISE = 0.02  # unseen word pieces must rise by 2 points (and double) to matter


@dataclass(frozen=True)
class Check:
    """One measure of the batch: `value` (logged as `drift_<name>`), its test's `p` (NaN: not
    judged), whether the effect is large enough to matter, the reason in one sentence should
    it flag, and further numbers (`drift_<name>_<key>`). `judge` fills `p_holm` and `drift`
    for the checks `in_family` (one logged beside a better measure of the same is not)."""

    name: str
    value: float
    p: float
    reason: str
    material: bool = True
    detail: dict | None = None
    p_holm: float = float("nan")
    drift: bool = False
    in_family: bool = True


def judge(checks: list[Check], alpha: float = ALPHA) -> list[Check]:
    """The batch's verdict: Holm-adjusted p-values over the checks that were judged, and drift
    where the adjusted p is below `alpha` and the effect is material. The chance that an
    unchanged batch is flagged by any check is then at most `alpha`."""
    from statsmodels.stats.multitest import multipletests

    judged = [i for i, c in enumerate(checks) if c.in_family and not np.isnan(c.p)]
    out = list(checks)
    if not judged:
        return out
    reject, adjusted, _, _ = multipletests([checks[i].p for i in judged], alpha, method="holm")
    for i, flag, p_holm in zip(judged, reject, adjusted, strict=True):
        out[i] = replace(checks[i], p_holm=float(p_holm),
                         drift=bool(flag) and checks[i].material)
    return out


def ks_check(name: str, what: str, reference: np.ndarray, batch: np.ndarray) -> Check:
    """Whether `batch` is drawn from another distribution than `reference` (two-sample KS);
    the value is the KS distance."""
    from scipy.stats import ks_2samp

    result = ks_2samp(reference, batch)
    return Check(name, float(result.statistic), float(result.pvalue),
                 f"{what} differs from the reference (KS {result.statistic:.2f}, p "
                 f"{result.pvalue:.1e}; mean {np.mean(batch):.2f} vs {np.mean(reference):.2f})",
                 detail={"batch_mean": float(np.mean(batch)),
                         "reference_mean": float(np.mean(reference))})


def psi(reference_share: np.ndarray, batch_share: np.ndarray, floor: float = 1e-4) -> float:
    """Population stability index between two distributions over the same classes."""
    ref = np.clip(reference_share, floor, None)
    cur = np.clip(batch_share, floor, None)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def class_mix_check(reference_counts: np.ndarray, batch_counts: np.ndarray,
                    names: tuple[str, ...]) -> Check:
    """Whether the predicted class mix moved: a chi-squared test of homogeneity on both sides'
    counts, material when the PSI reaches MIN_PSI (a tiny move on a huge batch is real but
    harmless)."""
    from scipy.stats import chi2_contingency

    table = np.vstack([reference_counts, batch_counts])
    table = table[:, table.sum(axis=0) > 0]  # a class neither side predicted says nothing
    p = 1.0 if table.shape[1] < 2 else float(chi2_contingency(table).pvalue)
    ref_share = (reference_counts + 0.5) / (reference_counts + 0.5).sum()  # no class at 0
    shares = batch_counts / batch_counts.sum()
    index = psi(ref_share, shares)
    mix = ", ".join(f"{c} {s:.0%}" for c, s in zip(names, shares, strict=True))
    return Check("class_mix", index, p, f"the predicted class mix moved (PSI {index:.2f}, p "
                 f"{p:.1e}): {mix}", material=index >= MIN_PSI)


def unseen_shares(sequences: list[list[int]], known: set[int], unk_id: int | None) -> np.ndarray:
    """Per text, the share of its word pieces that are [UNK] or absent from `known` (texts
    without pieces left out). All texts' pieces are looked up at once: a lookup per text
    costs a sort of `known` per text, seconds for a reference of thousands."""
    lengths = np.fromiter((len(seq) for seq in sequences), dtype=np.int64, count=len(sequences))
    pieces = np.fromiter((i for seq in sequences for i in seq), dtype=np.int64,
                         count=int(lengths.sum()))
    strange = ~np.isin(pieces, np.fromiter(known, dtype=np.int64, count=len(known)))
    if unk_id is not None:
        strange |= pieces == unk_id
    lengths = lengths[lengths > 0]
    starts = np.r_[0, np.cumsum(lengths)[:-1]]
    counts = np.add.reduceat(strange.astype(np.int64), starts) if len(lengths) else lengths
    return counts / np.maximum(lengths, 1)


def _pooled(shares: np.ndarray, sequences: list[list[int]]) -> float:
    """The share over all pieces, from the per-text shares of `sequences` (length-weighted)."""
    lengths = np.asarray([len(seq) for seq in sequences if seq], dtype=float)
    return float(np.dot(shares, lengths) / lengths.sum()) if lengths.sum() else 0.0


def piece_share(sequences: list[list[int]], known: set[int], unk_id: int | None) -> float:
    """The share of all word pieces that are [UNK] or absent from `known`."""
    return _pooled(unseen_shares(sequences, known, unk_id), sequences)


def unseen_pieces_check(train_ids: list[list[int]], holdout_ids: list[list[int]],
                        batch_ids: list[list[int]], unk_id: int | None) -> Check:
    """Word pieces the model never saw in training (or [UNK]): whether the batch's texts hold
    more of them than held-out reference texts (one-sided Mann-Whitney on the per-text shares:
    texts, not pieces, are the independent units). New words always occur; another language
    or domain brings many more, and the rise is material when the share at least doubles and
    grows by MIN_UNSEEN_RISE."""
    from scipy.stats import mannwhitneyu

    known = {i for seq in train_ids for i in seq}
    ref, cur = unseen_shares(holdout_ids, known, unk_id), unseen_shares(batch_ids, known, unk_id)
    expected, share = _pooled(ref, holdout_ids), _pooled(cur, batch_ids)
    p = float(mannwhitneyu(cur, ref, alternative="greater").pvalue) if len(ref) and len(cur) \
        else float("nan")
    return Check("unseen_pieces", share, p,
                 f"{share:.1%} of the batch's word pieces never occurred in training (reference "
                 f"{expected:.1%}, p {p:.1e})",
                 material=share >= max(2 * expected, expected + MIN_UNSEEN_RISE),
                 detail={"reference": expected})


def domain_classifier_check(reference: list[str], batch: list[str], seed: int) -> Check:
    """How well a TF-IDF logistic regression tells batch texts from reference texts: fitted on
    a random half of each side, its scores on the other halves compared with a one-sided
    Mann-Whitney test (the value is their ROC AUC, about 0.5 when the two are alike; a
    held-out half keeps the test exact where cross-validated scores would not be). The words
    that most mark the batch are in the detail. Under 4 batch texts it is not judged (NaN)."""
    from scipy.stats import mannwhitneyu
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    texts, y = list(reference) + list(batch), np.r_[np.zeros(len(reference)), np.ones(len(batch))]
    if len(batch) < 4 or len(reference) < 4:
        return Check("vocabulary_auc", float("nan"), float("nan"), "", detail={"batch_words": []})
    # words in at least two texts (both sides, labels unused: the held-out test stays exact)
    vectorizer = TfidfVectorizer(min_df=2, sublinear_tf=True)
    try:
        x = vectorizer.fit_transform(texts)
    except ValueError:  # no word occurs twice: nothing to tell the sides apart by
        return Check("vocabulary_auc", float("nan"), float("nan"), "", detail={"batch_words": []})
    fit_x, test_x, fit_y, test_y = train_test_split(x, y, test_size=0.5, stratify=y,
                                                    random_state=seed)
    model = LogisticRegression(max_iter=1000, class_weight="balanced").fit(fit_x, fit_y)
    scores = model.decision_function(test_x)
    result = mannwhitneyu(scores[test_y == 1], scores[test_y == 0], alternative="greater")
    auc = float(result.statistic / ((test_y == 1).sum() * (test_y == 0).sum()))
    words = np.asarray(vectorizer.get_feature_names_out())[np.argsort(model.coef_[0])[::-1][:10]]
    return Check("vocabulary_auc", auc, float(result.pvalue),
                 f"a classifier tells batch texts from reference texts (held-out ROC AUC "
                 f"{auc:.2f}, p {result.pvalue:.1e}); words that mark the batch: "
                 f"{', '.join(words[:6])}", detail={"batch_words": list(words)})


def accuracy_check(correct: np.ndarray, reference_correct: int, reference_rows: int,
                   margin: float = 0.0) -> Check:
    """With labels: whether the batch's accuracy is lower than the reference's by more than
    `margin`, both measured on samples (one-sided score test of two independent proportions,
    statsmodels): a one-sample test against the reference's accuracy as if it were exact
    flags unchanged batches far more often than its nominal rate once the batch is large."""
    from statsmodels.stats.proportion import test_proportions_2indep

    rows, right = len(correct), int(np.sum(correct))
    accuracy, reference = right / rows, reference_correct / reference_rows
    with np.errstate(divide="ignore", invalid="ignore"):  # its odds ratio at 100%: unused
        p = float(test_proportions_2indep(right, rows, reference_correct, reference_rows,
                                          value=-margin, method="score", compare="diff",
                                          alternative="smaller").pvalue)
    if not np.isfinite(p):  # both sides at 0% or 100%: nothing can have fallen
        p = 1.0
    allowed = f" by more than {margin:.3f}" if margin else ""
    return Check("accuracy", accuracy, p,
                 f"accuracy fell to {accuracy:.3f} ({right}/{rows}) from the reference's "
                 f"{reference:.3f} ({reference_correct}/{reference_rows}){allowed} (p {p:.1e})",
                 detail={"reference": reference, "margin": margin})

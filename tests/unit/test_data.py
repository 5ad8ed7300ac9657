"""ingest: loading, validation, stratified disjoint sampling, and the data checks."""
from __future__ import annotations

import pandas as pd
import pytest
from support import texts_frame

from agnews.config import DataConfig
from agnews.data.profile import class_balance, text_length, text_overlap
from agnews.data.sampling import allocate, sample_splits
from agnews.data.sources import Source, load_source
from agnews.data.tables import read_table, validate
from agnews.errors import UserError


@pytest.mark.parametrize("counts, n, expected", [
    ([100, 100, 100, 100], 10, [3, 3, 2, 2]),
    ([50, 30, 20], 10, [5, 3, 2]),
    ([1, 1, 1, 97], 4, [0, 0, 0, 4]),
    ([5, 5], 10, [5, 5]),
])
def test_allocate_is_proportional_and_sums_to_n(counts, n, expected):
    quota = allocate(pd.Series(counts), n)
    assert quota.sum() == n
    assert list(quota) == expected


def balanced_source(per_class: int, test_per_class: int | None = 10) -> Source:
    train = texts_frame([label for label in range(4) for _ in range(per_class)], "train")
    test = (texts_frame([label for label in range(4) for _ in range(test_per_class)], "test")
            if test_per_class else None)
    return Source(train, test, "memory")


def test_splits_have_requested_sizes_and_are_disjoint():
    splits = sample_splits(balanced_source(30), DataConfig(data="x", train_size=40, val_size=12,
                                                           test_size=20))
    assert {k: len(v) for k, v in splits.items()} == {"train": 40, "val": 12, "test": 20}
    assert not set(splits["train"]["text"]) & set(splits["val"]["text"])
    assert set(splits["test"]["text"]) <= {f"test {i} about topic {i // 10}" for i in range(40)}
    for df in splits.values():
        assert list(df.columns) == ["text", "label"]
        assert df["label"].between(0, 3).all()


def test_splits_are_stratified():
    splits = sample_splits(balanced_source(30), DataConfig(data="x", train_size=40, val_size=12,
                                                           test_size=20))
    for name, per_class in (("train", 10), ("val", 3), ("test", 5)):
        assert splits[name]["label"].value_counts().to_dict() == {c: per_class for c in range(4)}


def test_sampling_is_seeded():
    cfg = DataConfig(data="x", train_size=20, val_size=8, test_size=8, seed=7)
    a, b = sample_splits(balanced_source(30), cfg), sample_splits(balanced_source(30), cfg)
    c = sample_splits(balanced_source(30), DataConfig(data="x", train_size=20, val_size=8,
                                                      test_size=8, seed=8))
    assert all(a[k].equals(b[k]) for k in a)
    assert not a["train"].equals(c["train"])


@pytest.mark.parametrize("train_size", [0, 10_000])
def test_zero_or_too_many_means_all_rows(train_size):
    splits = sample_splits(balanced_source(30), DataConfig(data="x", train_size=train_size,
                                                           val_size=12, test_size=0))
    assert len(splits["train"]) == 120 - 12
    assert len(splits["test"]) == 40


def test_single_file_source_carves_test_from_the_same_pool():
    splits = sample_splits(balanced_source(30, test_per_class=None),
                           DataConfig(data="x", train_size=60, val_size=20, test_size=40))
    texts = [set(df["text"]) for df in splits.values()]
    assert sum(map(len, texts)) == len(set().union(*texts)) == 120


def test_too_few_rows_for_the_request_is_a_user_error():
    with pytest.raises(UserError, match="need 110"):
        sample_splits(balanced_source(25), DataConfig(data="x", train_size=90, val_size=20))


def test_a_class_short_of_rows_is_named():
    # 10 rows fit train_size + val_size overall, but rounding both shares up asks World for 4.
    source = Source(texts_frame([0] * 3 + [1] * 3 + [2] * 3 + [3]), texts_frame([0, 1]), "m")
    with pytest.raises(UserError, match="class World has 3 rows"):
        sample_splits(source, DataConfig(data="x", train_size=8, val_size=2))


def test_val_taking_every_row_is_refused():
    with pytest.raises(UserError, match="leaves none to train on"):
        sample_splits(balanced_source(5), DataConfig(data="x", val_size=0))


def test_class_balance_and_text_length_tables():
    splits = {"train": texts_frame([0, 0, 1, 3]), "test": texts_frame([2, 2])}
    balance = class_balance(splits)
    train = balance[balance["split"] == "train"].set_index("class")["rows"].to_dict()
    assert train == {"World": 2, "Sports": 1, "Business": 0, "Sci/Tech": 1}
    lengths = text_length(splits).set_index(["split", "unit"])
    assert lengths.loc[("train", "words"), "mean"] == 5.0
    assert text_overlap(texts_frame([0, 1]), texts_frame([0, 2, 3])) == 1  # "story 0 ... 0"


def test_the_class_balance_plot_draws_each_splits_rows_in_class_order():
    from agnews.data.plots import class_balance as balance_plot

    splits = {"train": texts_frame([0, 0, 1, 3]), "val": texts_frame([1]),
              "test": texts_frame([2, 2, 0])}
    ax = balance_plot(class_balance(splits)).axes[0]
    assert [t.get_text() for t in ax.get_legend().texts] == ["train", "val", "test"]
    heights = [[bar.get_height() for bar in bars] for bars in ax.containers]  # split by class
    assert heights == [[2, 1, 0, 1], [0, 1, 0, 0], [1, 0, 2, 0]]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["World", "Sports", "Business",
                                                             "Sci/Tech"]


def test_the_length_plot_draws_each_splits_share_of_its_own_texts():
    import numpy as np

    from agnews.data.plots import length_distribution

    fig = length_distribution({"train": np.array([3, 50, 130]), "test": np.array([20, 40])},
                              "tokens", 128)
    ax = fig.axes[0]
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.texts] == ["train (n=3)", "test (n=2)",
                                                    "max_length 128 (20.0% truncated)"]
    # each text one bin of its own: every bar the share one text is of its split
    tops = [max(patch.get_xy()[:, 1]) for patch in ax.patches]  # filled and edge, per split
    assert tops == pytest.approx([1 / 3, 1 / 3, 1 / 2, 1 / 2])


def test_drawing_the_data_plots_imports_neither_seaborn_nor_scipy_stats():
    """ingest and tokenize draw only these; seaborn would add its `scipy.stats` to their start."""
    import subprocess
    import sys

    from support import ROOT, subprocess_env

    code = ("import sys, numpy as np, pandas as pd\n"
            "from agnews.data import plots\n"
            "plots.class_balance(pd.DataFrame({'split': ['train'], 'class': ['World'], "
            "'rows': [3]}))\n"
            "plots.length_distribution({'train': np.array([3, 9])}, 'words', 5)\n"
            "print(sorted(m for m in ('seaborn', 'scipy.stats') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=subprocess_env(),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


# -- the repository's sample of real AG News rows ---------------------------------------------

def test_the_sample_of_real_ag_news_loads_with_text_and_labels(ag_news):
    source = load_source(str(ag_news))
    assert len(source.train) == 1_600 and len(source.test) == 1_200
    assert source.train["label"].value_counts().to_dict() == {c: 400 for c in range(4)}
    assert source.test["label"].value_counts().to_dict() == {c: 300 for c in range(4)}
    first = source.train.iloc[0]
    assert first["text"].startswith("South Korea lowers interest rates South Korea's central")
    assert first["label"] == 2  # "3" = Business in the 1-4 CSV layout
    assert not set(source.train["text"]) & set(source.test["text"])  # no row in both splits


def test_the_sample_is_the_one_its_sources_note_describes(ag_news):
    import hashlib
    import re

    note = (ag_news / "SOURCES.md").read_text(encoding="utf-8")
    for name in ("train.csv", "test.csv", "classes.txt"):
        listed = re.search(rf"\| {re.escape(name)} \|.*\| ([0-9a-f]{{32}}) \|", note).group(1)
        assert hashlib.md5((ag_news / name).read_bytes()).hexdigest() == listed, name
    assert sum((ag_news / n).stat().st_size for n in ("train.csv", "test.csv")) < 1_000_000


def test_default_sample_of_real_data_is_disjoint_and_balanced(ag_news):
    splits = sample_splits(load_source(str(ag_news)), DataConfig(data=str(ag_news)))
    assert {k: len(v) for k, v in splits.items()} == {"train": 1000, "val": 200, "test": 500}
    assert not set(splits["train"]["text"]) & set(splits["val"]["text"])
    assert splits["test"]["label"].value_counts().to_dict() == {c: 125 for c in range(4)}
    shares = splits["train"]["label"].value_counts(normalize=True)
    assert shares.between(0.24, 0.26).all()


# -- bad input ---------------------------------------------------------------------------------

@pytest.mark.parametrize("frame, message", [
    (pd.DataFrame({"text": ["a"], "y": [0]}), "lacks column"),
    (pd.DataFrame({"text": ["a", "b"], "label": [0, 4]}), "outside 0-3"),
    (pd.DataFrame({"text": ["a", "b"], "label": [0, 1.5]}), "outside 0-3"),
    (pd.DataFrame({"text": ["a", "  "], "label": [0, 1]}), "empty text"),
    (pd.DataFrame({"text": ["a", None], "label": [0, 1]}), "empty text"),
    (pd.DataFrame({"text": [], "label": []}), "no rows"),
])
def test_validate_rejects_bad_frames(frame, message):
    with pytest.raises(UserError, match=message):
        validate(frame, "data.csv")


def write(path, text):
    path.write_text(text)
    return path


@pytest.mark.parametrize("train_csv, message", [
    ('"5","Title","Body"\n', "outside 1-4"),
    ('"1","Title","Body"\n"2","only two"\n"1","a","b","c"\n', "not a readable CSV"),
    ('"1","Title"\n', "2 columns"),
    ('"1"," "," "\n', "empty text"),
    ("", "is empty"),
])
def test_bad_ag_news_layout_csv_is_rejected(tmp_path, train_csv, message):
    write(tmp_path / "train.csv", train_csv)
    write(tmp_path / "test.csv", '"1","Title","Body"\n')
    with pytest.raises(UserError, match=message):
        load_source(str(tmp_path))


def test_columnar_csv_and_parquet_files_load(tmp_path):
    frame = texts_frame([0, 1, 2, 3])
    frame.to_csv(tmp_path / "d.csv", index=False)
    frame.to_parquet(tmp_path / "d.parquet")
    for name in ("d.csv", "d.parquet"):
        source = load_source(str(tmp_path / name))
        assert source.test is None
        assert source.train.equals(frame)


@pytest.mark.parametrize("data, message", [
    ("./no/such/folder", "does not exist"),
    ("missing.csv", "does not exist"),
    ("not a hub id!", "does not exist"),
])
def test_missing_paths_are_named(data, message):
    with pytest.raises(UserError, match=message):
        load_source(data)


def test_folder_without_train_and_test_is_rejected(tmp_path):
    write(tmp_path / "other.csv", "text,label\na,0\n")
    with pytest.raises(UserError, match="has no train.csv"):
        load_source(str(tmp_path))


@pytest.mark.parametrize("layout", ["ag_news", "columns"])
def test_spreadsheet_csv_with_bom_and_crlf_loads_like_any_other(tmp_path, layout):
    """What Excel's "CSV UTF-8" saves: a byte-order mark and Windows line endings."""
    rows = ['"3","Oil climbs","Crude rose again."', '"2","Cup final","Underdogs win."']
    if layout == "columns":
        rows = ["text,label", '"Oil climbs Crude rose again.",2', '"Cup final Underdogs win.",1']
    plain, excel = tmp_path / "plain.csv", tmp_path / "excel.csv"
    plain.write_bytes("\n".join(rows).encode() + b"\n")
    excel.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(rows).encode("utf-8") + b"\r\n")
    loaded = read_table(excel)
    assert loaded.equals(read_table(plain))
    assert loaded["text"].tolist() == ["Oil climbs Crude rose again.", "Cup final Underdogs win."]
    assert loaded["label"].tolist() == [2, 1]


@pytest.mark.parametrize("reader", ["predict", "monitor", "ingest"])
def test_a_latin1_csv_stops_with_one_line_naming_the_line_and_the_fix(tmp_path, reader):
    """What an older spreadsheet program saves: Latin-1. Every entry point reads it the same
    way and names the first line that is not UTF-8 and how to convert the file."""
    from agnews.monitoring.batch import read_batch

    path = tmp_path / "train.csv"
    path.write_bytes("text,label\nMarkets rally,2\nCafé owners strike in Paris,0\n"
                     .encode("latin-1"))
    (tmp_path / "test.csv").write_bytes(path.read_bytes())
    read = {"predict": lambda: read_table(path, need_label=False),
            "monitor": lambda: read_batch(path),
            "ingest": lambda: load_source(str(tmp_path))}[reader]
    with pytest.raises(UserError) as err:
        read()
    message = str(err.value)
    assert "is not UTF-8 text (line 3 has byte 0xe9" in message
    assert "iconv -f latin1 -t utf-8 train.csv" in message and "\n" not in message

"""tokenize's tokenizer through the `tokenizers` library alone gives the ids transformers
gives, for each kind of model it is used with: a folder with tokenizer.json (the tiny test
model, the MiniLM stand-in) and a TinyBERT-shaped folder with only vocab.txt (the Hub's
TinyBERT, from its cache and online, is checked in test_hub.py); and what it saves,
transformers loads back unchanged."""
from __future__ import annotations

import json
import shutil

import pytest
from hub_fixtures import tinybert_folder
from support import sample_texts
from tiny_model import standin_model_dir

from agnews.model.fast_tokenizer import FastTokenizer, fast_tokenizer
from agnews.model.pretrained import load_tokenizer, locate

ODD = ["Ünïcode café naïve résumé", "北京 and 東京 in one line", "", "  tabs\tand\nnewlines  ",
       "emoji 😀 and a control\x07char", "x" * 300, "A.B.C. U.S.-led $1.5bn (AP) -- Reuters"]
SETTINGS = [{"truncation": True, "max_length": 128}, {"truncation": True, "max_length": 16},
            {"truncation": False}]


@pytest.fixture(scope="module")
def texts(ag_news) -> list[str]:
    return sample_texts(ag_news) + ODD


@pytest.fixture(scope="module")
def legacy_folder(tmp_path_factory):
    return tinybert_folder(tmp_path_factory.mktemp("tinybert-shaped"))


@pytest.mark.parametrize("kind", ["tiny", "standin", "legacy"])
def test_the_ids_and_the_saved_folder_equal_transformers(kind, texts, tiny_model, legacy_folder,
                                                          tmp_path):
    from transformers import AutoTokenizer

    folder = {"tiny": tiny_model, "standin": standin_model_dir(), "legacy": legacy_folder}[kind]
    source = locate(str(folder))
    fast, reference = fast_tokenizer(source), load_tokenizer(source)
    assert isinstance(fast, FastTokenizer)
    assert fast.pad_token_id == reference.pad_token_id is not None
    for kwargs in SETTINGS:
        assert fast(texts, **kwargs)["input_ids"] == reference(texts, **kwargs)["input_ids"], kwargs
    fast.save_pretrained(tmp_path / "saved")
    back = AutoTokenizer.from_pretrained(str(tmp_path / "saved"))
    assert type(back) is type(reference)
    assert back(texts, truncation=True, max_length=64)["input_ids"] == \
        reference(texts, truncation=True, max_length=64)["input_ids"]
    for max_length in (8, 16, 128):  # tokenize's one pass: ids and untruncated lengths
        ids, lengths = fast.ids_and_lengths(texts + ["word " * 600], max_length)
        assert ids == reference(texts + ["word " * 600], truncation=True,
                                max_length=max_length)["input_ids"]
        assert lengths == [len(i) for i in reference(texts + ["word " * 600])["input_ids"]]


def test_another_tokenizer_class_is_left_to_transformers(tiny_model, tmp_path):
    folder = shutil.copytree(tiny_model, tmp_path / "model")
    config = json.loads((folder / "tokenizer_config.json").read_text())
    (folder / "tokenizer_config.json").write_text(
        json.dumps({**config, "tokenizer_class": "RobertaTokenizer"}))
    assert fast_tokenizer(locate(str(folder))) is None


def test_a_folder_without_tokenizer_files_is_left_to_transformers(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(
        {"model_type": "bert", "hidden_size": 8, "num_attention_heads": 2, "num_hidden_layers": 1,
         "intermediate_size": 16, "vocab_size": 30}))
    assert fast_tokenizer(locate(str(tmp_path))) is None
    (tmp_path / "tokenizer.json").write_text("{not json")  # unreadable: transformers says why
    assert fast_tokenizer(locate(str(tmp_path))) is None

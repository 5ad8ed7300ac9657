"""The tokenize step's tokenizer from the `tokenizers` library alone, without transformers.

Importing transformers' tokenizer classes costs a process seconds (they import torch); the
Rust `tokenizers` library that transformers' BERT tokenizer wraps imports in milliseconds.
For the BERT-family tokenizers this project fine-tunes, `fast_tokenizer` builds the same
`tokenizers.Tokenizer` that transformers builds: from the model's `tokenizer.json` where it
has one, else from `vocab.txt` as transformers' `BertTokenizer` does (TinyBERT ships only a
vocabulary). Anything else gives None, and tokenize loads transformers' tokenizer instead.
The tests hold the ids and the saved folder equal to transformers' for each kind of model.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import WordPiece

from agnews.model.pretrained import BERT_KEYS, Pretrained

# Deferred import: huggingface_hub's download, for Hub ids only (a folder needs none).

FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt",
         "config.json")
BERT_TOKENIZERS = {"BertTokenizer", "BertTokenizerFast"}
SPECIAL = {"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]",
           "cls_token": "[CLS]", "mask_token": "[MASK]"}  # BertTokenizer's defaults


@dataclass
class FastTokenizer:
    """What tokenize asks of a tokenizer, over a `tokenizers.Tokenizer`: transformers' call
    for a list of texts, its pad token id, and a folder transformers loads back as is."""

    backend: Tokenizer
    pad_token_id: int | None
    config: dict   # tokenizer_config.json: the class and settings transformers reads back

    def __call__(self, texts: list[str], truncation: bool = False, max_length: int | None = None,
                 add_special_tokens: bool = True) -> dict[str, list[list[int]]]:
        if truncation:  # transformers' defaults: longest_first, from the right, no stride
            self.backend.enable_truncation(max_length)
        else:
            self.backend.no_truncation()
        encoded = self.backend.encode_batch(texts, add_special_tokens=add_special_tokens)
        return {"input_ids": [e.ids for e in encoded]}

    def ids_and_lengths(self, texts: list[str], max_length: int
                        ) -> tuple[list[list[int]], list[int]]:
        """Ids truncated to `max_length`, as `__call__` gives them, and each text's length
        before truncation (special tokens included), from one pass instead of two: the
        library keeps what truncation cut off as overflowing pieces, each with the special
        tokens added again, which are left out of the count."""
        self.backend.enable_truncation(max_length)
        special = self.backend.num_special_tokens_to_add(False)
        encoded = self.backend.encode_batch(texts)
        return ([e.ids for e in encoded],
                [len(e.ids) + sum(len(o.ids) - special for o in e.overflowing) for e in encoded])

    @property
    def unk_token_id(self) -> int | None:
        return self.backend.token_to_id(_token(self.config.get("unk_token")) or "[UNK]")

    @classmethod
    def from_folder(cls, folder: Path | str) -> FastTokenizer:
        """A folder transformers saved a fast tokenizer to (tokenizer.json and
        tokenizer_config.json), as the logged model holds it; any tokenizer class."""
        folder = Path(folder)
        backend = Tokenizer.from_file(str(folder / "tokenizer.json"))
        backend.no_padding()
        config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
        pad = _token(config.get("pad_token"))
        if pad is None or backend.token_to_id(pad) is None:
            raise ValueError(f"{folder / 'tokenizer_config.json'} names no padding token the "
                             "tokenizer knows")
        return cls(backend, backend.token_to_id(pad), config)

    def save_pretrained(self, folder: Path | str) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.backend.no_truncation()
        self.backend.save(str(folder / "tokenizer.json"))
        (folder / "tokenizer_config.json").write_text(json.dumps(self.config, indent=2))


def _token(value) -> str | None:
    """A special token as tokenizer_config.json writes it: a string or {"content": ...}."""
    return value.get("content") if isinstance(value, dict) else value


def settings(files: dict[str, Path]) -> dict | None:
    """tokenizer_config.json (with special_tokens_map.json's tokens) when it names a BERT
    tokenizer, or BertTokenizer's defaults for a BERT model that names none; else None."""
    read = {name: json.loads(files[name].read_text(encoding="utf-8"))
            for name in ("tokenizer_config.json", "special_tokens_map.json", "config.json")
            if name in files}
    config = read.get("tokenizer_config.json")
    if config is None:
        model = read.get("config.json", {})
        # as load_tokenizer reads it: a BERT config, or one without model_type but BERT-shaped
        if model.get("model_type", "bert") != "bert" or not all(k in model for k in BERT_KEYS):
            return None
        config = {"tokenizer_class": "BertTokenizer", "do_lower_case": True}
    if config.get("tokenizer_class") not in BERT_TOKENIZERS:
        return None
    tokens = {k: _token(v) for k, v in {**SPECIAL, **read.get("special_tokens_map.json", {}),
                                        **config}.items() if k in SPECIAL}
    return {**config, **tokens}


def from_vocab(vocab: Path, config: dict) -> Tokenizer:
    """What transformers' BertTokenizer.__init__ builds from a vocabulary and its settings."""
    ids = {line.rstrip("\n"): i for i, line in
           enumerate(vocab.read_text(encoding="utf-8").splitlines())}
    tokenizer = Tokenizer(WordPiece(ids, unk_token=config["unk_token"]))
    tokenizer.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=config.get("tokenize_chinese_chars", True),
        strip_accents=config.get("strip_accents"), lowercase=config.get("do_lower_case", True))
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    cls, sep = config["cls_token"], config["sep_token"]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{cls}:0 $A:0 {sep}:0", pair=f"{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1",
        special_tokens=[(cls, ids.get(cls, 2)), (sep, ids.get(sep, 3))])
    return tokenizer


def tokenizer_files(source: Pretrained) -> dict[str, Path]:
    """The tokenizer's files the source has: a folder's, or the pinned Hub commit's (fetched
    into the Hugging Face cache as transformers would; absent ones are left out)."""
    if source.revision is None:
        return {n: Path(source.name) / n for n in FILES if (Path(source.name) / n).is_file()}
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    found = {}
    for name in FILES:
        try:
            found[name] = Path(hf_hub_download(source.name, name, **source.load_kwargs()))
        except (EntryNotFoundError, LocalEntryNotFoundError):
            continue
    return found


def fast_tokenizer(source: Pretrained) -> FastTokenizer | None:
    """The source's BERT tokenizer through `tokenizers` alone; None where transformers is
    needed (another tokenizer class, or neither tokenizer.json nor vocab.txt)."""
    try:
        files = tokenizer_files(source)
        config = settings(files)
        if config is None:
            return None
        if "tokenizer.json" in files:
            backend = Tokenizer.from_file(str(files["tokenizer.json"]))
        elif "vocab.txt" in files:
            backend = from_vocab(files["vocab.txt"], config)
        else:
            return None
    except Exception:  # unreadable files: transformers' own load then says what is wrong
        return None
    backend.no_padding()  # train pads per batch
    return FastTokenizer(backend, backend.token_to_id(config["pad_token"]), config)

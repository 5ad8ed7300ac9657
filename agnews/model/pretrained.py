"""Loading the pretrained model and tokenizer from a local folder or a Hub id, pinned.

A Hub id is first pinned to a commit (`agnews.hub.resolve`: the Hub if it answers, else the
local cache), and both loads read that commit, from the cache only when the Hub did not
answer. Errors are one line naming the fix.

TinyBERT's `config.json` predates transformers' `model_type` key (it has BERT's fields plus
distillation leftovers such as `cell`, `structure`, `emb_size`), and transformers 5 no longer
guesses the type from the repo name, so `AutoConfig` refuses it. A config without
`model_type` but with BERT's shape is read as a `BertConfig`, which it is.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from agnews.config import LABELS
from agnews.errors import UserError
from agnews.hub import Revision, is_hub_id, resolve

# Deferred imports: transformers (seconds, with torch) loads only where a model or tokenizer is
# loaded; `locate` and the tokenize step's `tokenizers`-only path never need it.

BERT_KEYS = ("hidden_size", "num_attention_heads", "num_hidden_layers", "intermediate_size",
             "vocab_size")


@dataclass(frozen=True)
class Pretrained:
    """Where a pretrained model comes from: a folder, or a Hub id pinned to a commit."""

    name: str                   # what from_pretrained gets
    revision: Revision | None   # None for a local folder

    def load_kwargs(self) -> dict:
        if self.revision is None:
            return {}
        return {"revision": self.revision.sha, "local_files_only": not self.revision.online}

    def tags(self) -> dict[str, str]:
        """What a run records about the model it loaded."""
        if self.revision is None:
            return {"model.source": "folder"}
        return {"model.source": "hub" if self.revision.online else "cache",
                "model.revision": self.revision.sha}


def locate(model: str, revision: str = "main") -> Pretrained:
    """A local folder as is; a Hub id pinned (one-line errors for what is neither)."""
    path = Path(model).expanduser()
    if path.exists():
        return Pretrained(str(path), None)
    if not is_hub_id(model):
        raise UserError(f"model folder '{model}' does not exist: pass an existing folder "
                        "(paths are relative to the project folder) or a Hub model id")
    return Pretrained(model, resolve(model, "model", revision))


def legacy_config(source: Pretrained):
    """A `BertConfig` for a config.json without `model_type` but with BERT's fields; None
    when the config names its type (transformers' auto classes then read it as usual)."""
    from transformers import BertConfig, PretrainedConfig

    config, _ = PretrainedConfig.get_config_dict(source.name, **source.load_kwargs())
    if "model_type" in config:
        return None
    if not all(key in config for key in BERT_KEYS):  # _load turns this into one line
        raise ValueError("its config.json has no model_type and is not BERT-shaped"
                         if config else "no config.json")
    return BertConfig.from_dict(config)


def _load(loader, model, revision: str, what: str, **kwargs):
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # "Loading weights" bars would bury the step's output
    source = model if isinstance(model, Pretrained) else locate(model, revision)
    try:
        return loader(source, **kwargs)
    except (OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0][:140] if str(err).strip() else type(err).__name__
        if source.revision is None:
            raise UserError(f"folder '{source.name}' holds no usable {what} ({first}): pass a "
                            "folder written by save_pretrained (config.json, weights, "
                            "tokenizer files)") from None
        raise UserError(f"cannot load the {what} of '{source.name}' at revision "
                        f"{source.revision.sha[:12]} ({first}): check the model id, or pass a "
                        "local folder as -P model=<folder>") from None


def load_tokenizer(model: str | Pretrained, revision: str = "main"):
    from transformers import AutoTokenizer

    def loader(source: Pretrained):
        config = legacy_config(source)
        extra = {"config": config} if config is not None else {}
        return AutoTokenizer.from_pretrained(source.name, **source.load_kwargs(), **extra)

    return _load(loader, model, revision, "tokenizer")


def load_classifier(model: str | Pretrained, revision: str = "main"):
    """A sequence classifier with a fresh 4-way head named after the AG News classes; a BERT
    one computes its last layer for the first position alone (`agnews.model.first_token`)."""
    from transformers import AutoModelForSequenceClassification

    from agnews.model.first_token import first_token_only

    head = {"num_labels": len(LABELS), "id2label": dict(enumerate(LABELS)),
            "label2id": {name: i for i, name in enumerate(LABELS)}}

    def loader(source: Pretrained):
        config = legacy_config(source)
        if config is not None:  # with config=, the head's settings go on the config
            for key, value in head.items():
                setattr(config, key, value)
            extra = {"config": config}
        else:
            extra = head
        # ignore_mismatched_sizes: a checkpoint fine-tuned for another label count gets a
        # fresh 4-way head instead of a load error.
        return AutoModelForSequenceClassification.from_pretrained(
            source.name, ignore_mismatched_sizes=True, **source.load_kwargs(), **extra)

    classifier = _load(loader, model, revision, "model")
    first_token_only(classifier)  # the last layer computes only what the head reads
    return classifier

"""Step 2, tokenize: turn the three splits into token ids with the model's own tokenizer.

Reads: `splits`, the `data/` artifact of an ingest run (`runs:/<ingest run>/data`).
Writes: `tokenized/<split>/` (Arrow files in `datasets`' `save_to_disk` layout: columns
`input_ids`, unpadded and truncated to `max_length`, `label`, and `tokens`, the length before
truncation), `tokenized/meta.json` (model, its Hub commit, max_length, pad id, rows), and
`tokenizer/` (save_pretrained), so train reloads everything without re-tokenizing. The texts
are read and encoded a batch at a time (`datasets.Dataset.map`), so memory stays flat
whatever the rows; `num_proc` encodes in several processes. Tags
`model.source` and `model.revision` say where the tokenizer came from, `tokenizer.library`
which library built it (`tokenizers` alone for BERT tokenizers, else `transformers`).
Plot: `plots/text_length_tokens.png` (token lengths per split, max_length marked).
Metrics: `<split>_truncated_share`, `truncated_share`, `<split>_tokens_mean`,
`<split>_tokens_p95` (lengths before truncation), `<split>_rows_per_second`.
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from agnews.cli import config_params, parse, quiet_libraries, run_step
from agnews.config import SPLITS, TokenizeConfig
from agnews.data.tables import release_arrow_memory, rows_digest
from agnews.data.tokenized import (
    encode_processes,
    encode_split,
    length_summary,
    read_texts,
)
from agnews.errors import UserError

# Deferred imports: mlflow and the heavier libraries (and the agnews modules that import them)
# load in main, after the arguments parse: a bad parameter gets its one-line error at once.


def main(argv=None) -> None:
    quiet_libraries()
    (cfg,), uris = parse("tokenize", argv, [TokenizeConfig],
                         {"splits": "data/ artifact of an ingest run: runs:/<id>/data"})
    import mlflow

    from agnews.data.plots import length_distribution
    from agnews.model.fast_tokenizer import FastTokenizer, fast_tokenizer
    from agnews.model.pretrained import load_tokenizer, locate
    from agnews.tracking.runs import fetch, log_figure, step_run, without_dataset_advisories

    folder = fetch(uris.splits, "data", "ingest")
    source = locate(cfg.model, cfg.model_revision)
    # the `tokenizers` library alone where it builds what transformers would: it starts in
    # milliseconds, transformers' tokenizer classes in seconds
    tokenizer = fast_tokenizer(source) or load_tokenizer(source)
    if tokenizer.pad_token_id is None:
        raise UserError(f"the tokenizer of '{cfg.model}' has no padding token, which batching "
                        "needs: pass a BERT-family model (TinyBERT, MiniLM, DistilBERT, ...)")
    with step_run("tokenize", config_params(cfg), {"splits": uris.splits}), \
            tempfile.TemporaryDirectory() as tmp:
        mlflow.set_tags({**source.tags(), "tokenizer.library": (
            "tokenizers" if isinstance(tokenizer, FastTokenizer) else "transformers")})
        out, work = Path(tmp) / "tokenized", Path(tmp) / "work"
        out.mkdir()
        lengths, rows = {}, {}
        for split in SPLITS:
            parquet = folder / f"{split}.parquet"
            texts = read_texts(parquet, work)
            # MLflow resolves no dataset source for runs:/ URIs; the input.splits tag keeps
            # that URI, the source names the file read. The digest is ingest's (rows_digest).
            with without_dataset_advisories():
                mlflow.log_input(mlflow.data.from_huggingface(
                    texts, source=str(parquet), targets="label", name=split,
                    digest=rows_digest(texts.to_pandas(batch_size=50_000, batched=True))),
                    context=split)
            processes, start = encode_processes(cfg.num_proc, len(texts)), time.perf_counter()
            encoded = encode_split(texts, out / split, tokenizer, cfg.max_length, work,
                                   processes)
            seconds = time.perf_counter() - start
            mlflow.log_metric(f"{split}_rows_per_second", len(texts) / seconds)
            print(f"tokenize: {split}: {len(texts)} texts in {seconds:.1f} s "
                  f"({len(texts) / seconds:.0f}/s, {processes} process"
                  f"{'es' if processes > 1 else ''})", flush=True)
            lengths[split] = np.asarray(encoded.data.table.column("tokens"), dtype=np.int64)
            rows[split] = len(encoded)
            mlflow.log_metrics({f"{split}_{k}": v for k, v in
                                length_summary(lengths[split], cfg.max_length).items()})
            del texts, encoded  # unmapped: the pages they touched leave this process
            release_arrow_memory()
        mlflow.log_metric("truncated_share", length_summary(
            np.concatenate(list(lengths.values())), cfg.max_length)["truncated_share"])
        log_figure(length_distribution(lengths, "tokens", cfg.max_length),
                   "plots/text_length_tokens.png")
        meta = {"model": cfg.model, "model_revision": source.tags().get("model.revision"),
                "max_length": cfg.max_length, "pad_token_id": tokenizer.pad_token_id,
                "rows": rows}
        (out / "meta.json").write_text(json.dumps(meta, indent=2))
        mlflow.log_artifacts(str(out), "tokenized")
        tokenizer.save_pretrained(Path(tmp) / "tokenizer")
        mlflow.log_artifacts(str(Path(tmp) / "tokenizer"), "tokenizer")
    print(f"tokenize: {sum(meta['rows'].values())} texts, max_length {cfg.max_length}")


if __name__ == "__main__":
    run_step("tokenize", main, sys.argv[1:])

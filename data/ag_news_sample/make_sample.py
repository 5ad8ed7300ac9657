#!/usr/bin/env python3
"""Draw this folder's sample from a full AG News copy: the same rows, byte for byte.

    python data/ag_news_sample/make_sample.py --source <folder with AG News train.csv, test.csv>

Per class, a seeded random choice of rows from each split, kept in the source's row order;
each chosen line is copied unchanged, so a row here is a row there. Run by hand: the tests
read the committed files.
"""
from __future__ import annotations

import argparse
import csv
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
PER_CLASS = {"train": 400, "test": 300}
SEED = 0


def sample_lines(lines: list[str], per_class: int, seed: int) -> list[int]:
    """Indices of `per_class` lines of each class (the first CSV field), in file order."""
    by_class: dict[str, list[int]] = {}
    for i, line in enumerate(lines):
        by_class.setdefault(next(csv.reader([line]))[0], []).append(i)
    rng = random.Random(seed)
    chosen = [i for label in sorted(by_class) for i in rng.sample(by_class[label], per_class)]
    return sorted(chosen)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, required=True,
                        help="folder with the AG News train.csv and test.csv to sample from")
    args = parser.parse_args()
    for split, per_class in PER_CLASS.items():
        lines = (args.source / f"{split}.csv").read_text(encoding="utf-8").splitlines(True)
        chosen = sample_lines(lines, per_class, SEED)
        (HERE / f"{split}.csv").write_text("".join(lines[i] for i in chosen), encoding="utf-8")
        print(f"{split}.csv: {len(chosen)} of {len(lines)} rows; source line numbers "
              f"{chosen[0] + 1}..{chosen[-1] + 1}")


if __name__ == "__main__":
    main()

"""The search space: the default, the `-P space=` syntax, its one-line errors, and Optuna
drawing from it."""
from __future__ import annotations

import optuna
import pytest

from agnews.config import DataConfig, TrainConfig
from agnews.errors import UserError
from agnews.search.space import Dimension, parse_space, suggest
from agnews.search.trials import apply


def test_the_default_space_searches_four_training_settings():
    searched, fixed = parse_space("")
    assert fixed == {}
    assert searched["learning_rate"] == Dimension("learning_rate", "float", 3e-5, 5e-4, log=True)
    assert searched["epochs"] == Dimension("epochs", "int", 1, 4)
    assert searched["train_batch_size"].choices == (8, 16, 32)
    assert searched["freeze_embeddings"].choices == (True, False)
    # what a run records as its space reads back as the same space
    assert parse_space(" ".join(d.describe() for d in searched.values()), base="") == \
        (searched, {})


def test_an_entry_replaces_its_default_fixes_a_value_or_adds_a_parameter():
    searched, fixed = parse_space("learning_rate=1e-5:3e-4:log epochs=2 train_size=500,1000")
    assert (searched["learning_rate"].low, searched["learning_rate"].high) == (1e-5, 3e-4)
    assert fixed == {"epochs": 2}
    assert "epochs" not in searched
    # a setting trials cannot be ranked across may still be fixed for all of them
    fixed_smoothing = parse_space("label_smoothing=0.1")[1]
    assert fixed_smoothing == {"label_smoothing": 0.1}
    assert apply(fixed_smoothing, DataConfig(), TrainConfig())[1].label_smoothing == 0.1
    assert searched["train_size"].choices == (500, 1000)


@pytest.mark.parametrize("space,message", [
    ("lr=1e-5:1e-4", "unknown parameter 'lr': the space takes epochs, freeze_embeddings"),
    ("learning_rate=3e-4:1e-5", "learning_rate=3e-4:1e-5 is an empty range"),
    ("epochs=3:3", "epochs=3:3 is an empty range"),
    ("learning_rate=0:1e-3:log", "on a log scale: give low > 0"),
    ("epochs=1.5:3", "epochs=1.5 is not an int"),
    ("micro_batch_tokens=auto", "is not an int: pass e.g. micro_batch_tokens=0,512, or leave it "
     "out for auto"),
    ("freeze_embeddings=yes,no", "freeze_embeddings=yes is not a bool"),
    ("freeze_embeddings=true:false", "is not a range"),
    ("epochs=1:4:linear", "is not a range"),
    ("epochs=2,2", "offers one value"),
    ("epochs", "is not name=low:high"),
    ("epochs=1:2 epochs=1:3", "epochs is given twice"),
    ("learning_rate=1e-4 epochs=2 train_batch_size=16 freeze_embeddings=true",
     "nothing left to search"),
    ("label_smoothing=0,0.1", "label_smoothing cannot be searched: trials are ranked by "
     "val_loss"),
    ("label_smoothing=0:0.2", "fix it for every trial instead, e.g. label_smoothing=0.1"),
])
def test_a_bad_space_stops_with_one_line_naming_the_fix(space, message):
    with pytest.raises(UserError) as err:
        parse_space(space)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_optuna_draws_every_value_inside_the_space():
    searched, _ = parse_space("train_size=200:800")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        values = suggest(study.ask(), searched)
        assert 3e-5 <= values["learning_rate"] <= 5e-4
        assert values["epochs"] in range(1, 5) and isinstance(values["epochs"], int)
        assert values["train_batch_size"] in (8, 16, 32)
        assert values["freeze_embeddings"] in (True, False)
        assert 200 <= values["train_size"] <= 800

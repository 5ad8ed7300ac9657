"""-P preset=: named settings fill the parameters left at their defaults, and only those."""
from __future__ import annotations

import pytest

from agnews.config import DataConfig, MainConfig, TokenizeConfig, TrainConfig
from agnews.errors import UserError
from agnews.presets import PRESETS, apply_preset


def test_full_fills_every_default_it_names():
    configs = apply_preset("full", (DataConfig(), TokenizeConfig(), TrainConfig()))
    full = PRESETS["full"]
    assert (configs[0].train_size, configs[0].test_size) == (0, 0)  # every row
    filled = {name: getattr(c, name) for c in configs for name in full if hasattr(c, name)}
    assert filled == full
    # What the preset does not name stays as it was.
    assert configs[0].val_size == DataConfig().val_size and configs[2].seed == TrainConfig().seed


def test_a_value_given_on_the_command_line_wins_over_the_preset():
    data, train = apply_preset("full", (DataConfig(test_size=1000), TrainConfig(epochs=5)))
    assert data.test_size == 1000 and data.train_size == 0
    assert train.epochs == 5 and train.freeze_layers == PRESETS["full"]["freeze_layers"]


def test_a_value_given_at_its_default_takes_the_presets_value():
    # mlflow run passes every default along: epochs=2 given and epochs left alone look alike
    (train,) = apply_preset("full", (TrainConfig(epochs=TrainConfig().epochs),))
    assert train.epochs == PRESETS["full"]["epochs"]


def test_no_preset_leaves_the_configs_alone():
    configs = (DataConfig(train_size=7), TrainConfig())
    assert apply_preset("", configs) == list(configs)


def test_an_unknown_preset_is_refused_with_the_names_there_are():
    with pytest.raises(UserError, match="preset='fast' is not one of full: pass e.g. -P "
                                        "preset=full"):
        MainConfig(preset="fast")
    with pytest.raises(UserError, match="preset='x'"):
        apply_preset("x", (DataConfig(),))

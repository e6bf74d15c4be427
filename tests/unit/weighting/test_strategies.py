"""Every weighting strategy: registration, config validation, one training step."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

from mtl_runner.weighting import WEIGHTINGS
from tests.unit.weighting.tiny_model import dataset, make_batch, make_trainer

STRATEGIES = ["static", "uncertainty", "dwa", "gradnorm", "pcgrad", "mgda", "cagrad", "rlw"]


def test_every_strategy_is_registered():
    assert sorted(STRATEGIES) == WEIGHTINGS.names()


@pytest.mark.parametrize("name", STRATEGIES)
def test_config_forbids_unknown_keys_and_cites_a_paper(name):
    cls = WEIGHTINGS.get(name)
    assert cls.Config(name=name).telemetry is False
    with pytest.raises(ValidationError, match="extra"):
        cls.Config(name=name, bogus=1)
    assert cls.__doc__ and len(cls.__doc__.splitlines()) > 2


@pytest.mark.parametrize("name,key,value", [("dwa", "temperature", 0.0), ("gradnorm", "alpha", -1.0),
                                           ("cagrad", "c", -0.5), ("mgda", "normalize", "l3"),
                                           ("mgda", "telemetry_every", 0)])
def test_config_rejects_bad_values(name, key, value):
    with pytest.raises(ValidationError, match=key):
        WEIGHTINGS.get(name).Config(name=name, **{key: value})


@pytest.mark.parametrize("name", STRATEGIES)
def test_one_step_changes_every_shared_weight(name):
    trainer, network, tasks = make_trainer(name, telemetry=True)
    shared = [v for v in network.get_layer("shared_dense_0").trainable_variables]
    before = [np.array(v.numpy()) for v in shared]
    heads_before = {t: np.array(network.get_layer(t).kernel.numpy()) for t in tasks}
    history = trainer.fit(dataset(make_batch(tasks)), epochs=1, verbose=0, shuffle=False)
    logs = {k: v[-1] for k, v in history.history.items()}
    assert math.isfinite(logs["loss"])
    for variable, old in zip(shared, before):
        assert not np.allclose(variable.numpy(), old), variable.path
    for task in tasks:
        assert not np.allclose(network.get_layer(task).kernel.numpy(), heads_before[task])
        assert f"{task}_loss" in logs and math.isfinite(logs[f"weight_{task}"])
    assert -1.0 <= logs["grad_cosine"] <= 1.0 and 0.0 <= logs["grad_conflict"] <= 1.0

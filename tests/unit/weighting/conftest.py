"""Each weighting test starts from a fresh Keras session."""

import pytest


@pytest.fixture(autouse=True)
def _clear_session():
    yield
    import keras

    keras.backend.clear_session()

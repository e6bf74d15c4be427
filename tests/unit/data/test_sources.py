import numpy as np
import pandas as pd
import pytest

from mtl_runner.data.sources import SourceError, read_source
from mtl_runner.recipe.schema import DataConfig


def test_builtin_penguins_and_digits_load_offline():
    penguins = read_source(DataConfig(source="builtin", name="penguins"))
    digits = read_source(DataConfig(source="builtin", name="digits"))
    assert penguins.shape == (344, 8) and penguins["sex"].isna().sum() == 11
    assert digits.shape == (1797, 65) and sorted(digits["digit"].unique()) == list(range(10))


def test_csv_and_parquet_read_the_same_table(tmp_path):
    frame = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]})
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.to_parquet(tmp_path / "t.parquet")
    for source in ("csv", "parquet"):
        read = read_source(DataConfig(source=source, path=str(tmp_path / f"t.{source}")))
        pd.testing.assert_frame_equal(read, frame)


def test_npz_flattens_arrays_into_columns(tmp_path):
    np.savez(tmp_path / "d.npz", image=np.arange(8).reshape(2, 2, 2), label=np.array([0, 1]))
    frame = read_source(DataConfig(source="npz", path=str(tmp_path / "d.npz")))
    assert list(frame.columns) == ["image_0", "image_1", "image_2", "image_3", "label"]
    assert frame.iloc[1].tolist() == [4, 5, 6, 7, 1]


def test_npz_with_unequal_lengths_is_an_error(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros(3), y=np.zeros(2))
    with pytest.raises(SourceError, match="different lengths"):
        read_source(DataConfig(source="npz", path=str(tmp_path / "d.npz")))


@pytest.mark.parametrize("content, message", [
    ("", "the file is empty"),
    ("a,b\n", "no rows"),
    ("a,b\n1,2\n3,4,5,6\n", "cannot parse as csv"),
])
def test_bad_csv_files(tmp_path, content, message):
    (tmp_path / "t.csv").write_text(content)
    with pytest.raises(SourceError, match=message):
        read_source(DataConfig(source="csv", path=str(tmp_path / "t.csv")))


def test_csv_options_read_a_semicolon_latin1_file_with_decimal_commas(tmp_path):
    (tmp_path / "t.csv").write_bytes("a;b\n1,5;caf\u00e9\n2,25;th\u00e9\n".encode("latin-1"))
    options = {"sep": ";", "decimal": ",", "encoding": "latin-1"}
    frame = read_source(DataConfig(source="csv", path=str(tmp_path / "t.csv"), csv=options))
    assert frame["a"].tolist() == [1.5, 2.25] and frame["b"].tolist() == ["caf\u00e9", "th\u00e9"]


@pytest.mark.parametrize("content, message", [
    ("a;b;c\n1;2;3\n", "split on ';'"),
    ("a,a,b\n1,2,3\n", "names a column more than once: 'a'"),
])
def test_a_header_read_wrongly_is_refused(tmp_path, content, message):
    (tmp_path / "t.csv").write_text(content)
    with pytest.raises(SourceError, match=message):
        read_source(DataConfig(source="csv", path=str(tmp_path / "t.csv")))

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from mtl_runner.data.builtin import DATASETS
from mtl_runner.data.images import image_dir_table, load_images, read_image
from mtl_runner.data.sources import read_source
from mtl_runner.recipe.schema import DataConfig


def save(path, value, size=(10, 12)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((*size, 3), value, dtype=np.uint8)).save(path)


def test_image_dir_lists_files_by_class_folder(tmp_path):
    save(tmp_path / "b" / "1.png", 10)
    save(tmp_path / "a" / "2.jpg", 20)
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    frame = image_dir_table(tmp_path)
    assert frame["label"].tolist() == ["a", "b"]
    assert frame["image"].tolist() == [str(tmp_path / "a" / "2.jpg"), str(tmp_path / "b" / "1.png")]


def test_images_are_resized_and_grey_arrays_become_rgb():
    grey = np.arange(64, dtype=np.uint8).reshape(8, 8)
    image = read_image(grey, (16, 16, 3))
    assert image.shape == (16, 16, 3) and np.array_equal(image[..., 0], image[..., 2])
    assert read_image(np.ones((4, 4)) * 0.5, (4, 4, 1)).max() == 128  # floats in [0, 1] scale to 255


def test_an_unreadable_image_is_reported_with_its_file(tmp_path):
    save(tmp_path / "ok.png", 30)
    (tmp_path / "bad.png").write_bytes(b"not a png")
    images, failures = load_images(pd.Series([str(tmp_path / "ok.png"), str(tmp_path / "bad.png")]), (8, 8, 3))
    assert images[0].max() == 30 and len(failures) == 1
    row, reason = failures[0]
    assert row == 1 and reason.startswith(str(tmp_path / "bad.png"))


def test_csv_image_paths_are_relative_to_the_csv(tmp_path):
    save(tmp_path / "pics" / "x.png", 5)
    pd.DataFrame({"image": ["pics/x.png"], "label": ["a"]}).to_csv(tmp_path / "t.csv", index=False)
    data = DataConfig(source="csv", path=str(tmp_path / "t.csv"), image={"column": "image", "size": 8})
    assert read_source(data)["image"].tolist() == [str(tmp_path / "pics" / "x.png")]


def test_npz_image_arrays_stay_whole(tmp_path):
    np.savez(tmp_path / "d.npz", image=np.zeros((3, 5, 5, 3), np.uint8), label=np.array([0, 1, 0]))
    data = DataConfig(source="npz", path=str(tmp_path / "d.npz"), image={"column": "image", "size": 8})
    frame = read_source(data)
    assert list(frame.columns) == ["image", "label"] and frame["image"][0].shape == (5, 5, 3)


def test_shapes_are_fixed_by_their_seed():
    a, b, c = (DATASETS.get("shapes")(n=20, size=16, seed=s) for s in (1, 1, 2))
    assert a.drop(columns="image").equals(b.drop(columns="image"))
    assert all(np.array_equal(x, y) for x, y in zip(a["image"], b["image"]))
    assert not a.drop(columns="image").equals(c.drop(columns="image"))
    assert a["image"][0].shape == (16, 16, 3) and set(a["shape"]) <= {"circle", "square", "triangle"}


def test_digits_images_have_several_labels():
    frame = DATASETS.get("digits_images")()
    assert len(frame) == 1797 and frame["image"][0].shape == (8, 8) and frame["image"][0].max() <= 255
    assert set(frame["parity"]) == {"even", "odd"}


def test_builtin_options_are_checked(tmp_path):
    from mtl_runner.data.sources import SourceError

    with pytest.raises(SourceError, match="unexpected keyword argument 'sides'"):
        read_source(DataConfig(source="builtin", name="shapes", options={"sides": 3}))


def test_many_files_are_read_in_row_order_with_failures_named(tmp_path):
    paths = []
    for i in range(70):
        save(tmp_path / f"{i}.png", i)
        paths.append(str(tmp_path / f"{i}.png"))
    (tmp_path / "bad.png").write_bytes(b"broken")
    paths.insert(40, str(tmp_path / "bad.png"))
    images, failures = load_images(pd.Series(paths), (4, 4, 3))
    assert [row for row, _ in failures] == [40] and failures[0][1].startswith(str(tmp_path / "bad.png"))
    assert images[39].max() == 39 and images[40].max() == 0 and images[41].max() == 40

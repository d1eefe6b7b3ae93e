"""Built-in datasets on data the tests make or a package ships; clear errors when data is missing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from snt_search.registry import get_registry
from snt_search.specs import DataRequest, DataUnavailable


def load(name: str, request: DataRequest, **params: object):  # type: ignore[no-untyped-def]
    return get_registry().get("dataset", name).load(request, **params).validate(name)  # type: ignore[attr-defined]


def test_digits_is_real_offline_data_at_32x32() -> None:
    data = load("digits", DataRequest(download=False))
    assert data.train_x.shape[1:] == (3, 32, 32) and data.num_classes == 10
    assert len(data.train_y) + len(data.test_y) == 1797
    assert data.train_x.dtype.is_floating_point is False and int(data.train_x.max()) > 200


def test_imagefolder_reads_train_and_test_class_folders(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for split, n in (("train", 3), ("test", 2)):
        for cls in ("cat", "dog"):
            folder = tmp_path / split / cls
            folder.mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(
                    folder / f"{i}.png"
                )
    data = load("imagefolder", DataRequest(data_dir=tmp_path))
    assert data.classes == ("cat", "dog")
    assert data.train_x.shape == (6, 3, 32, 32) and data.test_x.shape == (4, 3, 32, 32)
    assert sorted(data.train_y.tolist()) == [0, 0, 0, 1, 1, 1]


def test_imagefolder_explains_the_layout(tmp_path: Path) -> None:
    with pytest.raises(DataUnavailable, match=r"needs --data-dir"):
        load("imagefolder", DataRequest())
    with pytest.raises(
        DataUnavailable, match=r"train is not a folder; the layout is .*train/<class>/\*.png"
    ):
        load("imagefolder", DataRequest(data_dir=tmp_path))


@pytest.mark.parametrize(
    ("name", "folder"), [("cifar10", "cifar-10-batches-py"), ("cifar100", "cifar-100-python")]
)
def test_cifar_offline_says_what_to_do(tmp_path: Path, name: str, folder: str) -> None:
    with pytest.raises(
        DataUnavailable,
        match=rf"'{name}'.*'{folder}' folder under --data-dir.*imagefolder / digits",
    ):
        load(name, DataRequest(data_dir=tmp_path, download=False))


def test_subset_is_seeded() -> None:
    data = load("synthetic", DataRequest())
    a, b = data.subset(50, 20, seed=1), data.subset(50, 20, seed=1)
    assert len(a.train_y) == 50 and len(a.test_y) == 20
    assert (a.train_x == b.train_x).all() and not (
        data.subset(50, 20, seed=2).train_x == a.train_x
    ).all()


def test_digits_are_never_mirrored_while_other_data_may_be() -> None:
    from snt_search.data import TensorLoader

    digits = get_registry().get("dataset", "digits").load(DataRequest())
    assert digits.hflip is False  # a mirrored 2 or 5 is no digit
    columns = torch.arange(32, dtype=torch.uint8) * 7 + 1  # brighter to the right
    x = columns.view(1, 1, 1, 32).expand(64, 3, 32, 32).contiguous()
    y = torch.zeros(len(x), dtype=torch.int64)

    def mirrored(hflip: bool) -> int:
        loader = TensorLoader(
            x, y, mean=(0.0,) * 3, std=(1.0,) * 3, batch_size=64, augment=True, hflip=hflip
        )
        (xb, _), *_ = list(loader)
        rows = xb[:, 0, 16, 8:24]  # inside the image whatever the crop (at most 4 px off)
        return int((rows[:, 0] > rows[:, -1]).sum())

    assert mirrored(False) == 0
    assert mirrored(True) > 0  # the same batch with flips allowed: some rows come mirrored


def test_imagefolder_hflip_is_a_parameter(tmp_path: Path) -> None:
    for split in ("train", "test"):
        for cls in ("a", "b"):
            (tmp_path / split / cls).mkdir(parents=True)
            Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / split / cls / "0.png")
    plugin = get_registry().get("dataset", "imagefolder")
    request = DataRequest(data_dir=tmp_path)
    assert plugin.load(request, image_size=8).hflip is True
    assert plugin.load(request, image_size=8, hflip=False).hflip is False

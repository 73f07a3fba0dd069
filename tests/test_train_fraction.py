"""`data.subset.fraction`: a seeded, nested subset of the training images (all their captions), the
ontology built on it, evaluation splits untouched; a bad fraction is a one-line keyed error."""

from __future__ import annotations

import pytest

from tonics.data.readers import KarpathyReader
from tonics.data.records import image_subset
from tonics.errors import ConfigError
from tonics.train.datamodule import TonicsDataModule
from tonics.train.settings import LoaderSettings, SubsetSettings


def test_subsets_are_nested_whole_images_and_seeded(tiny_dataset):
    split_file, root = tiny_dataset
    train = [r for r in KarpathyReader(split_file, root).read() if r.split == "train"]
    images = {r.image_id for r in train}
    subsets = {f: image_subset(train, f, seed=0) for f in (0.1, 0.25, 0.5, 1.0)}
    chosen = {f: {r.image_id for r in s} for f, s in subsets.items()}
    assert chosen[0.1] <= chosen[0.25] <= chosen[0.5] <= chosen[1.0] == images
    assert len(chosen[0.5]) == round(0.5 * len(images))
    for fraction, subset in subsets.items():  # every caption of a chosen image is kept
        assert len(subset) == sum(1 for r in train if r.image_id in chosen[fraction])
    assert chosen[0.5] != {r.image_id for r in image_subset(train, 0.5, seed=1)}
    assert image_subset(train, 0.5, seed=0) == subsets[0.5]


def test_the_data_module_trains_on_the_subset_and_evaluates_on_everything(tiny_dataset, tmp_path):
    split_file, root = tiny_dataset
    full = TonicsDataModule(
        KarpathyReader(split_file, root),
        loader=LoaderSettings(batch_size=4),
        ontology_cache=str(tmp_path),
    )
    half = TonicsDataModule(
        KarpathyReader(split_file, root),
        loader=LoaderSettings(batch_size=4),
        subset=SubsetSettings(fraction=0.5),
        ontology_cache=str(tmp_path),
    )
    assert len(half.split("train")) < len(full.split("train"))
    assert half.split("val") == full.split("val") and half.split("test") == full.split("test")
    half.setup("fit")
    assert half.ontology.pair_ids == [r.pair_id for r in half.split("train")]


@pytest.mark.parametrize("fraction", [0, -0.5, 1.5])
def test_a_fraction_outside_0_1_names_its_key(tiny_dataset, fraction):
    split_file, root = tiny_dataset
    with pytest.raises(ConfigError, match="data.subset.fraction"):
        TonicsDataModule(KarpathyReader(split_file, root), subset=SubsetSettings(fraction=fraction))

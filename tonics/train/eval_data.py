"""The evaluation side of the data module (a LightningDataModule mixin): each evaluation split's
records grouped by image, their annotations for the within-object, caption-novel and combination
metrics, and the sequential loaders of validation, test (or the split `testing` names) and predict.
"""

from __future__ import annotations

import contextlib

from torch.utils.data import DataLoader

from tonics.data.batches import image_once_loader
from tonics.data.records import PairRecord, sorted_by_image


class EvaluationLoaders:
    """Evaluation records, annotations and loaders of `TonicsDataModule`."""

    def split_evaluated(self, loop: str) -> str:
        """The data split an evaluation loop serves now: 'val' the configured split, 'test' the
        test split or the one `testing` names."""
        return {"val": self.evaluation.split, "test": self.test_split}.get(loop, loop)

    def eval_records(self, split: str) -> list[PairRecord]:
        """A split's records grouped by image, optionally capped to the first max_eval_pairs."""
        records = sorted_by_image(self.split(split))
        return records[: self.evaluation.max_pairs] if self.evaluation.max_pairs else records

    def eval_annotations(self, split: str) -> tuple[list[str | None], list[bool], list]:
        """For `eval_records(split)`, in order: each caption's object (the first the ontology
        extracts, None if none), whether it is novel (never seen verbatim in training) and whether
        its image's objects hold a pair no training image holds (None: under two objects). Used by
        the within-object, caption-novel and combination metrics; computed once per split."""
        if split not in self._annotations:
            from tonics.eval.composition import unseen_combinations
            from tonics.eval.within_object import caption_annotations

            train = self.split("train") if self.has_split("train") else []
            records = self.eval_records(split)
            objects, novel = caption_annotations(
                records, train, source=self.object_source, cache=self.ontology_cache
            )
            self._annotations[split] = (objects, novel, unseen_combinations(records, train))
        return self._annotations[split]

    def _eval_loader(self, split: str) -> DataLoader:
        return image_once_loader(
            self.eval_records(split),
            self.image_processor,
            self.tokenizer,
            batch_size=self.loader.eval_batch_size,
            num_workers=self.loader.num_workers,
            max_length=self.loader.max_text_length,
            persistent_workers=self.loader.persistent_workers,
            limits=self.image_limits,
            rank=self.trainer.global_rank if self.trainer else 0,
            world_size=self.trainer.world_size if self.trainer else 1,
        )

    def val_dataloader(self) -> DataLoader:
        """Sequential batches of the evaluation split (each image loaded once); under DDP each
        rank encodes its share and the metrics gather them (`tonics.train.evaluation`)."""
        return self._eval_loader(self.evaluation.split)

    def test_dataloader(self) -> DataLoader:
        """Sequential batches of the test split (or of the split `testing` names)."""
        return self._eval_loader(self.test_split)

    @contextlib.contextmanager
    def testing(self, split: str):
        """Inside the block, `test_dataloader` (and the test metrics' annotations) serve `split`:
        how the held-out transfer split is evaluated with the test loop."""
        previous, self.test_split = self.test_split, split
        try:
            yield
        finally:
            self.test_split = previous

    def predict_dataloader(self) -> DataLoader:
        """The test split, for `tonics predict` (embeddings)."""
        return self._eval_loader("test")

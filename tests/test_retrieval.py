"""Retrieval metrics against hand-computed toy cases; chunking; bad input."""

from __future__ import annotations

import pytest
import torch

from tonics.eval.retrieval import retrieval_metrics


def test_hand_computed_recalls_with_one_and_seven_captions():
    # 2 images along axes; image 0 has 1 caption, image 1 has 7.
    images = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    texts = torch.tensor([[0.0, 1.0]] + [[0.0, 1.0]] * 3 + [[1.0, 0.0]] * 4)
    owner = [0, 1, 1, 1, 1, 1, 1, 1]
    result = retrieval_metrics(images, texts, owner, ks=(1, 2))
    # caption 0 (of image 0) points at image 1: rank 1; captions 1-3 correct; 4-7 point at image 0
    assert result.text_to_image_ranks.tolist() == [1, 0, 0, 0, 1, 1, 1, 1]
    assert result.metrics["text_to_image_R@1"] == pytest.approx(3 / 8 * 100)
    assert result.metrics["text_to_image_R@2"] == 100.0
    # image 0: its only caption scores 0 while captions 4-7 score 1 -> rank 4 (4 above it)
    # image 1: best caption (1, score 1) ties with caption 0 (score 1, earlier) -> rank 1
    assert result.image_to_text_ranks.tolist() == [4, 1]
    assert (
        result.metrics["image_to_text_R@1"] == 0.0 and result.metrics["image_to_text_R@2"] == 50.0
    )
    assert result.metrics["image_to_text_mean_rank"] == pytest.approx((5 + 2) / 2)
    assert result.metrics["text_to_image_median_rank"] == 2.0


def test_ties_break_towards_the_lower_index():
    images = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])  # three identical images
    texts = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    result = retrieval_metrics(images, texts, [0, 1, 2], ks=(1,))
    assert result.text_to_image_ranks.tolist() == [0, 1, 2]
    assert result.image_to_text_ranks.tolist() == [0, 1, 2]


def test_chunked_equals_unchunked():
    g = torch.Generator().manual_seed(0)
    images = torch.nn.functional.normalize(torch.randn(50, 8, generator=g), dim=-1)
    owner = torch.randint(0, 50, (230,), generator=g)
    owner[:50] = torch.arange(50)
    texts = torch.nn.functional.normalize(
        images[owner] + 0.8 * torch.randn(230, 8, generator=g), dim=-1
    )
    whole = retrieval_metrics(images, texts, owner, chunk_size=100_000)
    chunked = retrieval_metrics(images, texts, owner, chunk_size=7)
    assert whole.metrics == chunked.metrics
    assert torch.equal(whole.text_to_image_ranks, chunked.text_to_image_ranks)
    assert torch.equal(whole.image_to_text_ranks, chunked.image_to_text_ranks)


def test_bad_input_is_a_clear_error():
    images, texts = torch.eye(2), torch.eye(2)
    with pytest.raises(ValueError, match="NaN"):
        retrieval_metrics(torch.tensor([[float("nan"), 0.0], [0.0, 1.0]]), texts, [0, 1])
    with pytest.raises(ValueError, match="points at image 5"):
        retrieval_metrics(images, texts, [0, 5])
    with pytest.raises(ValueError, match="non-empty"):
        retrieval_metrics(torch.zeros(0, 2), texts, [0, 1])
    with pytest.raises(ValueError, match="image 1 has no caption"):
        retrieval_metrics(images, texts, [0, 0])


def test_empty_split_is_a_clear_error():
    from tonics.data.records import ImageRef, PairRecord, select_split

    records = [PairRecord("1", ImageRef(path="a.jpg"), "a dog", "1", "train")]
    with pytest.raises(
        ValueError, match="split 'test' is empty; the data has splits \\['train'\\]"
    ):
        select_split(records, "test")


def test_paired_difference_reference_values():
    from tonics.eval.intervals import paired_difference

    a = [10.0, 12.0, 11.0, 13.0, 9.0]
    b = [11.0, 14.0, 11.5, 15.0, 10.5]  # differences 1, 2, 0.5, 2, 1.5: mean 1.4, sd 0.652
    result = paired_difference(a, b)
    assert result.mean_a == pytest.approx(11.0) and result.mean_b == pytest.approx(12.4)
    assert result.difference == pytest.approx(1.4)
    half = 2.776445 * 0.6519202 / 5**0.5  # t(0.975, 4) * sd / sqrt(n), by hand
    assert result.t_low == pytest.approx(1.4 - half, abs=1e-4)
    assert result.t_high == pytest.approx(1.4 + half, abs=1e-4)
    assert (
        0.5 <= result.bootstrap_low < 1.4 < result.bootstrap_high <= 2.0
    )  # within the data's range
    assert result.cell().startswith("+1.40 [")
    same = paired_difference(a, [v + 1 for v in a])
    assert same.t_low == same.t_high == pytest.approx(1.0)
    with pytest.raises(ValueError, match="paired"):
        paired_difference([1.0], [2.0])


def test_collect_embeddings_counts_captions_whose_image_failed():
    from tonics.eval.retrieval import collect_embeddings

    text = torch.eye(4)
    # batch of 4 captions: images a (loaded), b (failed), captions a, a, b, c(loaded)
    chunks = [
        (text, torch.eye(4)[:2], ["a", "a", "b", "c"], torch.tensor([True, False, False, True]))
    ]
    split = collect_embeddings(chunks)
    assert split.image_ids == ["a", "c"] and split.text_to_image == [0, 0, 1]
    assert split.dropped == 1


def test_within_object_and_caption_novel_reference():
    from tonics.eval.within_object import caption_novel_metrics, within_object_metrics

    images = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])
    texts = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    owner = [0, 1, 2, 1]
    objects = ["dog", "dog", "cat", "cat"]
    # by hand: dog captions rank {img0, img1}: c0 first (hit), c1 second (its image scores 0.8 < 1);
    # cat captions rank {img1, img2}: both hit. image->text per (image, object): img0/dog ties with
    # c1 and wins on index; img1/dog ties with c0 and loses on index; img1/cat and img2/cat hit.
    m = within_object_metrics(images, texts, owner, objects, ks=(1, 2))
    assert m["within_object_text_to_image_R@1"] == 75.0
    assert m["within_object_image_to_text_R@1"] == 75.0
    assert m["within_object_text_to_image_R@2"] == 100.0
    assert (
        m["within_object_text_to_image_queries"] == 4
        and m["within_object_image_to_text_queries"] == 4
    )
    # an object with a single image has no negative: no query
    lonely = within_object_metrics(images, texts, owner, ["dog", "dog", "cat", None], ks=(1,))
    assert lonely["within_object_text_to_image_queries"] == 2
    novel = caption_novel_metrics(images, texts, owner, [True, False, True, False], ks=(1,))
    assert novel == {
        "caption_novel_share": 50.0,
        "caption_novel_text_to_image_R@1": 100.0,
        "caption_novel_text_to_image_queries": 2.0,
    }

"""Zero-shot classification, CLIP style: each class's text embedding is the normalised mean of its
name in several prompt templates; an image is assigned the most similar class."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from tonics.errors import InputError

TEMPLATES = (
    "a photo of a {}.",
    "a picture of a {}.",
    "a drawing of a {}.",
    "clip art of a {}.",
    "an emoji of a {}.",
    "a close-up photo of the {}.",
    "a cartoon {}.",
)


def class_embeddings(
    encode_text: Callable[[list[str]], torch.Tensor],
    class_names: Sequence[str],
    templates: Sequence[str] = TEMPLATES,
) -> torch.Tensor:
    """(classes, dim) L2-normalised prompt-ensemble embeddings."""
    if not class_names:
        raise ValueError("zero-shot classification needs at least one class name")
    rows = []
    with torch.no_grad():
        for name in class_names:
            prompts = [t.format(name) for t in templates]
            rows.append(F.normalize(F.normalize(encode_text(prompts), dim=-1).mean(0), dim=-1))
    return torch.stack(rows)


def zero_shot_accuracy(
    image_embeddings: torch.Tensor,
    labels: Sequence[int] | torch.Tensor,
    classifier: torch.Tensor,
    ks: Sequence[int] = (1, 5),
) -> dict[str, float]:
    """Top-k accuracy (percent) of images against class embeddings; ties go to the lower class."""
    labels = torch.as_tensor(labels, dtype=torch.long)
    if not torch.isfinite(image_embeddings).all():
        raise ValueError("image embeddings contain NaN or inf")
    scores = image_embeddings.float() @ classifier.float().T
    own = scores.gather(1, labels[:, None])
    classes = torch.arange(scores.shape[1])
    rank = (scores > own).sum(1) + ((scores == own) & (classes[None, :] < labels[:, None])).sum(1)
    return {f"top{k}": float((rank < k).float().mean() * 100) for k in ks if k <= scores.shape[1]}


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")


def folder_samples(root) -> tuple[list[str], list[tuple[object, int]]]:
    """(class names, [(image path, class index)]) of an image folder: one subfolder per class
    (ImageNet/torchvision `ImageFolder` layout); names read with underscores as spaces."""
    from pathlib import Path

    root = Path(root)
    classes = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    if len(classes) < 2:
        raise InputError(
            f"{root}: an image folder needs at least two class subfolders (ROOT/<class>/<image>)"
        )
    samples = [
        (path, k)
        for k, name in enumerate(classes)
        for path in sorted((root / name).rglob("*"))
        if path.suffix.lower() in IMAGE_SUFFIXES
    ]
    return [c.replace("_", " ") for c in classes], samples


def dataset_samples(path, split: str, image_column: str, label_column: str):
    """(class names, [(PIL image or path, class index)]) of a local Hugging Face dataset
    (`save_to_disk` directory, or an imagefolder / parquet directory `load_dataset` reads)."""
    from pathlib import Path

    import datasets

    path = Path(path)
    if (path / "dataset_info.json").is_file() or (path / "dataset_dict.json").is_file():
        data = datasets.load_from_disk(str(path))
    else:
        data = datasets.load_dataset(str(path))
    if isinstance(data, datasets.DatasetDict):
        if split not in data:
            raise InputError(f"{path}: no split '{split}' (has {', '.join(data)}); pass --split")
        data = data[split]
    for column in (image_column, label_column):
        if column not in data.column_names:
            raise InputError(
                f"{path}: no column '{column}' (columns: {', '.join(data.column_names)})"
            )
    feature = data.features[label_column]
    if isinstance(feature, datasets.ClassLabel):
        names, labels = list(feature.names), list(data[label_column])
    else:
        names = sorted({str(v) for v in data[label_column]})
        labels = [names.index(str(v)) for v in data[label_column]]
    return [n.replace("_", " ") for n in names], [
        (row[image_column], label) for row, label in zip(data, labels)
    ]


def classify_images(
    towers, class_names: Sequence[str], samples, *, templates=TEMPLATES, batch_size: int = 64
) -> dict:
    """Top-1/top-5 accuracy of a model's prompt-ensemble classifier over (image, label) samples;
    images that cannot be read are skipped and counted, not fatal."""
    from PIL import Image
    from tqdm.auto import tqdm

    from tonics.data.images import ImageLimits, load_image, processor_draft_size
    from tonics.data.records import ImageRef

    limits = ImageLimits(draft_size=processor_draft_size(towers.image_processor))
    classifier = class_embeddings(towers.encode_captions, list(class_names), templates)
    embeddings, labels, skipped = [], [], {}
    for start in tqdm(
        range(0, len(samples), batch_size), desc="zero-shot", unit="batch", mininterval=2.0
    ):
        images, batch_labels = [], []
        for source, label in samples[start : start + batch_size]:
            if isinstance(source, Image.Image):
                image, reason = source.convert("RGB"), None
            else:
                image, reason = load_image(ImageRef(path=str(source)), limits)
            if image is None:
                skipped[str(source)] = reason
                continue
            images.append(image)
            batch_labels.append(label)
        if images:
            pixels = towers.image_processor(images=images, return_tensors="pt")["pixel_values"]
            embeddings.append(towers.encode_pixels(pixels))
            labels += batch_labels
    if not labels:
        raise InputError(f"no image could be read ({len(skipped)} skipped)")
    accuracy = zero_shot_accuracy(torch.cat(embeddings), labels, classifier)
    return {
        **accuracy,
        "images": len(labels),
        "classes": len(class_names),
        "skipped": len(skipped),
        "skipped_examples": dict(list(skipped.items())[:5]),
    }

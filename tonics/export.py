"""Export a trained checkpoint as a Hugging Face model directory (`tonics.model.exported` loads it).

`tonics export CKPT DIR` writes
  config.json, model.safetensors  a `TonicsDualEncoderModel` (both towers, heads, temperature;
                                  all weights in safetensors), see `tonics.model.hf_model`
  tokenizer files, preprocessor_config.json, processor_config.json
                                  the text tokenizer and image processor, together loadable with
                                  `AutoProcessor.from_pretrained(DIR)`
  README.md                       a model card (base encoders, data, curriculum, the run's
                                  retrieval figures, licences)
so the model loads three ways: `tonics.load(DIR)`; `AutoModel.from_pretrained(DIR)` (after
`import tonics`, which registers the model type); `pipeline("zero-shot-image-classification",
model=DIR)`.
"""

from __future__ import annotations

import json
from pathlib import Path

from tonics.model.encoders import load_image_processor, load_tokenizer
from tonics.model.hf_model import TonicsDualEncoderConfig, TonicsDualEncoderModel
from tonics.sampling.openings import Openings
from tonics.train.old_keys import grouped_config

# where the packaged encoders come from, and their weights' licences (for the model card)
ORIGINS = {
    "packaged:minilm": ("sentence-transformers/all-MiniLM-L6-v2", "apache-2.0"),
    "packaged:mobilenet_v2": ("torchvision MobileNetV2 (ImageNet-1k)", "bsd-3-clause"),
}


def export_checkpoint(checkpoint: str | Path, out: str | Path) -> Path:
    """Write the aligned model in `checkpoint` (a `tonics fit` .ckpt) to directory `out`."""
    from tonics.train.module import AlignmentModule

    module = AlignmentModule.from_checkpoint(checkpoint)
    spec = module.spec
    return export_model(
        module.model,
        out,
        text_name=spec.text_encoder,
        vision_name=spec.vision_encoder,
        text_pooling=spec.text_pooling,
        vision_pooling=spec.vision_pooling,
        head=spec.head,
        source=str(checkpoint),
        run=_run_directory(Path(checkpoint)),
    )


def _run_directory(checkpoint: Path) -> Path | None:
    """The `tonics fit` run directory a checkpoint lies in (`.../version_N/checkpoints/x.ckpt`)."""
    for parent in checkpoint.resolve().parents[:3]:
        if (parent / "config.yaml").is_file() or (parent / "stage_summary.json").is_file():
            return parent
    return None


def to_hf_model(
    model, *, text_pooling: str, vision_pooling: str, head: str
) -> TonicsDualEncoderModel:
    """The `AlignmentModel`'s weights in a `TonicsDualEncoderModel` (checked key for key)."""
    text, vision = model.text.encoder.model, model.vision.encoder.model
    config = TonicsDualEncoderConfig(
        text_config=text.config.to_dict(),
        vision_config=vision.config.to_dict(),
        text_pooling=text_pooling,
        vision_pooling=vision_pooling,
        head=head,
        embed_dim=model.embed_dim,
        text_dim=model.text.output_dim,
        vision_dim=model.vision.output_dim,
        text_pooler=getattr(text, "pooler", None) is not None,
        vision_pooler=getattr(vision, "pooler", None) is not None,
        caption_head=_caption_spec(model.captioner),
    )
    hf = TonicsDualEncoderModel(config)
    if model.captioner is not None:
        hf.caption_head.load_state_dict(model.captioner.state_dict())
    hf.text_model.load_state_dict(text.state_dict())
    hf.vision_model.load_state_dict(vision.state_dict())
    hf.text_projection.load_state_dict(model.text_head.state_dict())
    hf.visual_projection.load_state_dict(model.vision_head.state_dict())
    hf.logit_scale.data.copy_(model.logit_scale.detach())
    return hf.eval()


def _caption_spec(captioner) -> dict | None:
    """What rebuilds a captioning head: settings, vocabulary, widths, special token ids."""
    if captioner is None:
        return None
    decoder = captioner.decoder.config
    return {
        "settings": captioner.settings.to_dict(),
        "vocab_size": decoder.vocab_size,
        "width": decoder.hidden_size,
        "image_width": captioner.pooler.context_norm.normalized_shape[0],
        "special": dict(captioner.special),
    }


def export_model(
    model,
    out,
    *,
    text_name,
    vision_name,
    text_pooling,
    vision_pooling,
    head,
    source="",
    run: Path | None = None,
) -> Path:
    """Write an AlignmentModel as a Hugging Face model directory (see the module docstring)."""
    from transformers import VisionTextDualEncoderProcessor

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    hf = to_hf_model(model, text_pooling=text_pooling, vision_pooling=vision_pooling, head=head)
    hf.config.tonics = {"text_encoder": text_name, "vision_encoder": vision_name, "source": source}
    hf.save_pretrained(out, safe_serialization=True)
    tokenizer, image_processor = load_tokenizer(text_name), load_image_processor(vision_name)
    VisionTextDualEncoderProcessor(
        image_processor=image_processor, tokenizer=tokenizer
    ).save_pretrained(out)
    (out / "README.md").write_text(
        model_card(hf.config, text_name=text_name, vision_name=vision_name, run=run)
    )
    return out


def _run_facts(run: Path | None) -> tuple[dict, list[dict], dict]:
    """(fit config, stage summary, retrieval figures) of the run, where present."""
    import yaml

    if run is None:
        return {}, [], {}
    read = lambda name, parse: parse((run / name).read_text()) if (run / name).is_file() else None  # noqa: E731
    config = grouped_config(read("config.yaml", yaml.safe_load) or {})  # older runs: flat keys
    return (
        config,
        read("stage_summary.json", json.loads) or [],
        read("retrieval_test.json", json.loads) or {},
    )


CARD_METRICS = (
    "recall_mean",
    "image_to_text_R@1",
    "image_to_text_R@5",
    "image_to_text_R@10",
    "text_to_image_R@1",
    "text_to_image_R@5",
    "text_to_image_R@10",
    "within_object_image_to_text_R@1",
    "within_object_text_to_image_R@1",
)
CARD_USE = [
    "## Use",
    "",
    "```python",
    "import tonics  # registers the model type with transformers' Auto classes",
    "from transformers import AutoModel, AutoProcessor, pipeline",
    "",
    "model = tonics.load(DIR)  # encode_text([...]), encode_image([PIL images])",
    "hf = AutoModel.from_pretrained(DIR)  # get_text_features / get_image_features",
    "processor = AutoProcessor.from_pretrained(DIR)",
    'classify = pipeline("zero-shot-image-classification", model=DIR)',
    "```",
    "",
]


def _front_matter(origins: list[tuple[str, str | None]]) -> list[str]:
    """YAML front matter: library, pipeline, tags, licence and the hub ids of the base models."""
    licences = sorted({licence for _, licence in origins if licence})
    base = [o for o, _ in origins if "/" in o and " " not in o and not o.startswith(("/", "."))]
    front = [
        "---",
        "library_name: transformers",
        "pipeline_tag: zero-shot-image-classification",
        "tags: [tonics, dual-encoder, contrastive, image-text-retrieval]",
        f"license: {licences[0] if len(licences) == 1 else 'other'}",
    ]
    return front + (["base_model: [" + ", ".join(base) + "]"] if base else []) + ["---", ""]


def _model_section(config, text_name: str, vision_name: str, origins) -> list[str]:
    """The towers, their pooling and the weights' licences (stated, or 'unknown' by name)."""
    (text_origin, _), (vision_origin, _) = origins
    licences = ", ".join(
        f"{origin}: {licence or 'unknown (see that model’s own licence)'}"
        for origin, licence in origins
    )
    return [
        "## Model",
        "",
        f"- text tower: {text_origin} (`{text_name}`), {config.text_pooling} pooling",
        f"- vision tower: {vision_origin} (`{vision_name}`), {config.vision_pooling} pooling",
        f"- projection heads: {config.head}, {config.embed_dim}-d shared space; learnt temperature",
        f"- weights' licences: {licences}",
        "",
    ]


def _towers_text(openings: dict) -> str:
    """'text top 2, vision all' from a plan's openings; 'none (frozen)' when both are shut."""
    towers = [f"{t} {'all' if v == 'all' else f'top {v}'}" for t, v in openings.items() if v]
    return ", ".join(towers) or "none (frozen)"


def _stage_towers(plan: Openings, index: int, start: int | None, steps: int | None) -> str:
    """The towers a stage trains with: as the plan has them at its first step, and, when the
    model's `opening.at_step` falls inside the stage, what opens from that step."""
    first = _towers_text(plan.at(start or 0, index))
    at = plan.at_step
    inside = at is not None and start is not None and at > start
    if inside and (steps is None or at < start + steps):
        return f"{first}; {_towers_text(plan.at(at, index))} from step {at}"
    return first


def _training_section(fit: dict, stages: list[dict]) -> list[str]:
    """Data reader, steps, batch size, seed, the curriculum's stages and when the towers open
    (the run's opening plan: the stages' `opening` and the model's `opening.at_step`)."""
    data, model = fit.get("data", {}), fit.get("model", {})
    reader = (data.get("reader") or {}).get("class_path", "unknown")
    lines = [
        "## Training",
        "",
        f"- data reader: `{reader}`",
        f"- steps: {fit.get('trainer', {}).get('max_steps', 'unknown')}, batch size "
        f"{(data.get('loader') or {}).get('batch_size', 'unknown')}, "
        f"seed {fit.get('seed_everything', 'unknown')}",
    ]
    specs = data.get("stages") or [{}] * len(stages)
    openings = [spec.get("opening") or {} for spec in specs]
    plan = Openings(
        [(opening.get("text"), opening.get("vision")) for opening in openings],
        at_step=(model.get("opening") or {}).get("at_step"),
        top_k=(model.get("opening") or {}).get("top_k"),
    )
    if plan.at_step is not None:
        lines.append(
            f"- towers opened at step {plan.at_step}: {_towers_text(plan.at(plan.at_step, None))}"
        )
    if stages:
        lines += ["", "| stage | steps | batch mix | ramp | towers open |", "|---|---|---|---|---|"]
        start: int | None = 0
        for index, (stage, spec) in enumerate(zip(stages, specs)):
            steps = spec.get("steps")
            ramp = f"0 -> mix over {spec['ramp_steps']} steps" if spec.get("ramp_steps") else "-"
            lines.append(
                f"| {stage['name']} | {stage['steps']} | {stage['mix']} | {ramp} | "
                f"{_stage_towers(plan, index, start, steps)} |"
            )
            start = start + steps if start is not None and steps is not None else None
    return lines + [""]


def _evaluation_section(retrieval: dict) -> list[str]:
    """The run's test figures, when they were found beside the checkpoint."""
    lines = ["## Evaluation", ""]
    if not retrieval:
        return lines + ["No test figures were found beside the checkpoint.", ""]
    figures = {k.split("/", 1)[1]: v for k, v in retrieval.items() if isinstance(v, float)}
    checkpoint = Path(str(retrieval.get("checkpoint"))).name
    lines += [
        f"Test split of the training data ({int(figures.get('images', 0))} images, "
        f"{int(figures.get('captions', 0))} captions), checkpoint `{checkpoint}`:",
        "",
        "| metric | value |",
        "|---|---|",
    ]
    lines += [f"| {key} | {figures[key]:.2f} |" for key in CARD_METRICS if key in figures]
    return lines + [""]


def model_card(config, *, text_name: str, vision_name: str, run: Path | None) -> str:
    """A Hugging Face model card: front matter (licence, base model, pipeline tag) and text."""
    fit, stages, retrieval = _run_facts(run)
    origins = [
        ORIGINS.get(text_name, (text_name, None)),
        ORIGINS.get(vision_name, (vision_name, None)),
    ]
    intro = [
        "# tonics dual encoder",
        "",
        "A text encoder and a vision encoder aligned into one embedding space with contrastive "
        "InfoNCE and an ontology-informed curriculum (TOnICS; Srinivasan, Ren & Thomason 2022), "
        "trained with tonics.",
        "",
    ]
    if getattr(config, "caption_head", None):
        settings = config.caption_head["settings"]
        intro += [
            "It also **generates captions**: a CoCa-style captioning head (attentional pooling of "
            f"the image tokens into {settings['queries']} queries, a {settings['layers']}-layer "
            "BERT decoder with cross-attention, the text tower's vocabulary) was trained beside "
            "the contrastive loss. `tonics caption --model DIR IMAGE...`, or in Python "
            "`tonics.load(DIR).caption([PIL images], beams=1)`.",
            "",
        ]
    return "\n".join(
        _front_matter(origins)
        + intro
        + _model_section(config, text_name, vision_name, origins)
        + _training_section(fit, stages)
        + _evaluation_section(retrieval)
        + CARD_USE
    )

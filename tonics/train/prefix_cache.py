"""Frozen-prefix activation cache: train the top k blocks of a tower at cached-feature speed.

When only the top k blocks of a tower train, everything below them is frozen, in eval mode (no
dropout) with fixed BatchNorm statistics, and no augmentation is applied: the input of block L-k
is a fixed function of the image or caption. It is computed once per image and caption (for the
text tower the hidden states of the caption's tokens, the attention mask being their count; for
the vision tower the feature map or token sequence entering block L-k) and each training step runs
only the top k blocks, the layers after them, the pooling and the heads. A tower that stays
frozen (k = 0) keeps its pooled features.

Supported: BERT-family text encoders (`packaged:minilm`, any `BertModel`-like model whose blocks
are `encoder.layer`), MobileNetV2, ViT and CLIP vision towers. Before a computed cache is used, the
first batch is run both ways (live and cached prefix) and must agree; any other model, a tower
opened wholly, or a parameter below the top blocks that would train makes `UnsupportedSplit`, and
the trainer trains those stages live with one line saying why.

Storage follows the feature cache: a sharded, memory-mapped store (`tonics.train.sharded_store`:
every DDP rank writes its own parts, a killed build resumes, nothing is unpickled), keyed by the
frozen prefix's weights, the split, the storage dtype (fp16 halves the size; outputs then agree to
~1e-3), the tokenisation length, image limits and the training pairs.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pad_sequence
from tqdm.auto import tqdm

from ontology.wordnet import cache_dir
from tonics.model.alignment import _is_tail_parameter
from tonics.model.encoders import TextEncoder
from tonics.train.feature_cache import FeatureCache, _fingerprint, encode_part
from tonics.train.sharded_store import Failures, ShardedStore, load_or_build, ranks_of

log = logging.getLogger(__name__)

Split = tuple[int, int]  # (top blocks of the text tower, of the vision tower) that train; 0: frozen
STORAGE_DTYPES = {"float32": torch.float32, "float16": torch.float16}
# how close the cached path must come to the live one on the first batch (relative to the scale)
VERIFY_TOLERANCE = {torch.float32: 1e-4, torch.float16: 2e-2}


class UnsupportedSplit(ValueError):
    """This tower cannot be run from a cached prefix; the message says why."""


class _Captured(Exception):
    """Raised by the hook on the first trainable block: carries its input and stops the forward."""

    def __init__(self, hidden: torch.Tensor) -> None:
        super().__init__()
        self.hidden = hidden


def _capture(module, args, kwargs):
    raise _Captured(args[0] if args else kwargs["hidden_states"])


def _first(output):
    return output[0] if isinstance(output, tuple) else output


@contextlib.contextmanager
def eval_mode(module: nn.Module):
    """Every submodule in eval mode inside the block, each restored to its own mode after."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield
    finally:
        for m, mode in modes:
            m.training = mode


def _bidirectional_mask(model, hidden: torch.Tensor, attention_mask: torch.Tensor):
    """The attention mask the model itself builds from a 0/1 padding mask."""
    try:
        from transformers.masking_utils import create_bidirectional_mask
    except ImportError:  # transformers 4.x
        return model.get_extended_attention_mask(attention_mask, attention_mask.shape)
    return create_bidirectional_mask(
        config=model.config, inputs_embeds=hidden, attention_mask=attention_mask
    )


def family_of(encoder) -> str:
    """The architecture family whose layout the split knows, or UnsupportedSplit."""
    model = encoder.model
    if isinstance(encoder, TextEncoder):
        layers = getattr(getattr(model, "encoder", None), "layer", None)
        if layers is encoder.blocks and hasattr(model, "embeddings") and not getattr(model.config, "is_decoder", False):  # fmt: skip
            return "bert"
    else:
        from transformers import CLIPVisionModel, MobileNetV2Model, ViTModel

        for family, cls in (("mobilenet_v2", MobileNetV2Model), ("vit", ViTModel),
                            ("clip_vision", CLIPVisionModel)):  # fmt: skip
            if isinstance(model, cls):
                return family
    raise UnsupportedSplit(f"no prefix split is known for {type(model).__name__}")


class TowerSplit:
    """One encoder cut below its top `k` blocks: `prefix` runs the frozen part (once, for the
    cache), `suffix` the top blocks, the layers after them and the pooling (every step). With
    k = 0 nothing trains and the cached state is the pooled feature itself."""

    def __init__(self, encoder, k: int) -> None:
        self.encoder, self.k = encoder, k
        if k == 0:
            return
        self.family = family_of(encoder)
        blocks = list(encoder.blocks)
        if not 0 < k <= len(blocks):
            raise UnsupportedSplit(f"top {k} blocks asked of {len(blocks)}")
        self.top = blocks[len(blocks) - k :]
        self._check_prefix_stays_frozen(blocks)

    def _tail_modules(self) -> list[nn.Module]:
        model = self.encoder.model
        root = getattr(model, "vision_model", model)
        names = {"bert": ("pooler",), "mobilenet_v2": ("conv_1x1", "pooler"),
                 "vit": ("layernorm", "pooler"), "clip_vision": ("post_layernorm",)}[self.family]  # fmt: skip
        return [m for m in (getattr(root, n, None) for n in names) if m is not None]

    def suffix_modules(self) -> list[nn.Module]:
        """The modules a cached step runs (the only ones that may train)."""
        return [*self.top, *self._tail_modules()] if self.k else []

    def _check_prefix_stays_frozen(self, blocks: list[nn.Module]) -> None:
        """Opening top-k also opens final norms/poolers by name: they must all lie after the cut."""
        in_blocks = {id(p) for b in blocks for p in b.parameters()}
        after = {id(p) for m in self.suffix_modules() for p in m.parameters()}
        for name, p in self.encoder.model.named_parameters():
            if id(p) not in after and (p.requires_grad or (id(p) not in in_blocks and _is_tail_parameter(name))):  # fmt: skip
                raise UnsupportedSplit(
                    f"parameter '{name}' below the top {self.k} blocks would train"
                )

    def check_trainable(self) -> None:
        """At a cached step: no parameter outside the suffix may receive gradients."""
        if self.k == 0:
            if any(p.requires_grad for p in self.encoder.parameters()):
                raise RuntimeError("a tower served from pooled features has trainable parameters")
            return
        after = {id(p) for m in self.suffix_modules() for p in m.parameters()}
        for name, p in self.encoder.model.named_parameters():
            if p.requires_grad and id(p) not in after:
                raise RuntimeError(f"'{name}' trains but lies in the cached frozen prefix")

    @torch.no_grad()
    def prefix(self, *inputs: torch.Tensor) -> torch.Tensor:
        """The input of the first trainable block (or the pooled features when k = 0), in eval."""
        with eval_mode(self.encoder):
            if self.k == 0:
                return self.encoder(*inputs)
            handle = self.top[0].register_forward_pre_hook(_capture, with_kwargs=True)
            try:
                self.encoder(*inputs)
            except _Captured as captured:
                return captured.hidden
            finally:
                handle.remove()
        raise RuntimeError(
            f"{type(self.encoder.model).__name__} never reached its block L-{self.k}"
        )

    def suffix(
        self, state: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Pooled features from cached states, through the top blocks as they are now."""
        if self.k == 0:
            return state
        model, hidden = self.encoder.model, state
        if self.family == "bert":
            mask = _bidirectional_mask(model, hidden, attention_mask)
            for block in self.top:
                hidden = _first(block(hidden, mask))
            return self.encoder.pool(hidden, attention_mask)
        for block in self.top:
            hidden = _first(block(hidden) if self.family == "mobilenet_v2" else block(hidden, None))
        if self.family == "mobilenet_v2":
            last = model.conv_1x1(hidden)
            pooled = torch.flatten(model.pooler(last), 1) if model.pooler is not None else None
        elif self.family == "vit":
            last = model.layernorm(hidden)
            pooler = getattr(model, "pooler", None)
            pooled = pooler(last) if pooler is not None else None
        else:  # clip_vision: CLS through the post-LayerNorm
            last = hidden
            pooled = getattr(model, "vision_model", model).post_layernorm(hidden[:, 0])
        return self.encoder.pool(SimpleNamespace(last_hidden_state=last, pooler_output=pooled))


def text_states(split: TowerSplit, ids: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
    """One cached text state per caption: its tokens' hidden states (k > 0) or pooled vector."""
    state = split.prefix(ids, mask)
    if split.k == 0:
        return list(state.float().cpu())
    return [state[j][mask[j].bool()].cpu() for j in range(len(state))]


@dataclass
class PrefixCache:
    """Cached prefix states for the training pairs under one split, mapped from a sharded store.

    Text (`text`): with k > 0, the hidden states of each caption's tokens (`text_states`, ragged);
    with k = 0, one pooled row per pair. Images (`image`): one state per image."""

    split: Split
    store: ShardedStore
    key: str = ""
    build_s: float = 0.0
    source: str = "computed"
    splits: dict = field(default_factory=dict, repr=False)  # tower -> TowerSplit, set on bind

    @property
    def failures(self) -> Failures:
        """pair -> (location, reason) for pairs whose image failed to load."""
        return self.store.failures

    @property
    def nbytes(self) -> int:
        """Bytes of cached states on disk (memory-mapped)."""
        return self.store.nbytes

    def bind(self, model) -> PrefixCache:
        """Attach the model's towers (split as this cache was made) for `features`."""
        self.splits = {"text": TowerSplit(model.text.encoder, self.split[0]),
                       "vision": TowerSplit(model.vision.encoder, self.split[1])}  # fmt: skip
        return self

    def _text(self, pairs: torch.Tensor, device, dtype) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.split[0] == 0:
            return self.store.per_pair("text", pairs).to(device, dtype), None
        rows = self.store.ragged("text", pairs)
        states = pad_sequence(rows, batch_first=True).to(device, dtype)
        lengths = torch.tensor([len(r) for r in rows], device=device)
        mask = (torch.arange(states.shape[1], device=device)[None] < lengths[:, None]).long()
        return states, mask

    def features(self, indices: torch.Tensor, device, dtype=torch.float32):
        """(image features, text features, usable mask) for these pairs, pooled through the
        towers' trainable top blocks (gradients flow into them)."""
        for split in self.splits.values():
            split.check_trainable()
        image_states, usable = self.store.images_of("image", indices)
        if int(usable.sum()) < 2:  # nothing to contrast: the step is skipped
            empty = [
                torch.zeros(0, s.encoder.output_dim, device=device) for s in self.splits.values()
            ]
            return empty[1], empty[0], usable
        image = self.splits["vision"].suffix(image_states.to(device, dtype))
        states, mask = self._text(indices[usable], device, dtype)
        return image, self.splits["text"].suffix(states, mask), usable

    @torch.no_grad()
    def pooled_part(self, pairs: list[int], description: str, batch_size: int = 256, device="cpu"):
        """Pooled features of these pairs (and their images, once each) through the current
        (frozen) top blocks, in eval mode: one part of the derived feature cache."""
        keys = self.store.image_keys(torch.tensor(pairs))
        images, inverse = np.unique(keys[keys >= 0], return_inverse=True)
        pair_image = torch.full((len(pairs),), -1, dtype=torch.long)
        pair_image[torch.from_numpy(keys >= 0)] = torch.from_numpy(inverse.reshape(-1))
        text, image = [], []
        chunks = [("text", pairs[i : i + batch_size]) for i in range(0, len(pairs), batch_size)]
        chunks += [("image", images[i : i + batch_size]) for i in range(0, len(images), batch_size)]
        with eval_mode(self.splits["text"].encoder), eval_mode(self.splits["vision"].encoder):
            for kind, chunk in tqdm(chunks, desc=description, unit="batch", mininterval=2.0):
                if kind == "text":
                    states = self._text(torch.tensor(chunk), device, torch.float32)
                    text.append(self.splits["text"].suffix(*states).float().cpu())
                else:
                    states = self.store.per_image("image", chunk).to(device, torch.float32)
                    image.append(self.splits["vision"].suffix(states).float().cpu())
        width = self.splits["vision"].encoder.output_dim
        arrays = {"pair_image": pair_image, "text": torch.cat(text),
                  "image": torch.cat(image) if image else torch.zeros(0, width)}  # fmt: skip
        return arrays, {p: self.failures[p] for p in pairs if p in self.failures}


def derive_feature_cache(prefix: PrefixCache, model, datamodule, device="cpu", trainer=None) -> FeatureCache:  # fmt: skip
    """The frozen stages' pooled features, derived from a prefix cache through the current
    (frozen) top blocks without encoding anything again; stored like any feature cache, under a
    key of its own (fp16 prefix states make them differ from directly encoded ones by ~1e-3)."""
    records = datamodule.split("train")
    # the prefix key holds the pairs, tokenisation and frozen prefix; add the towers' top blocks
    towers = f"{_fingerprint(model.text)}|{_fingerprint(model.vision)}"
    key = hashlib.sha256(f"derived from prefix {prefix.key}|{towers}".encode()).hexdigest()[:20]
    store = load_or_build(
        cache_dir() / "features" / f"features-derived-{key}", key, [r.image_id for r in records],
        lambda pairs, description: prefix.pooled_part(pairs, description, device=device),
        what="feature cache (derived from the prefix cache)", **ranks_of(trainer),
    )  # fmt: skip
    return FeatureCache(store)


def _fingerprint_prefix(split: TowerSplit) -> str:
    """Hash of the weights and buffers the cached states depend on (not the trainable suffix)."""
    skip = {id(t) for m in split.suffix_modules() for t in (*m.parameters(), *m.buffers())}
    digest = hashlib.sha256()
    for name, tensor in split.encoder.state_dict(keep_vars=True).items():
        if id(tensor) in skip:
            continue
        digest.update(name.encode())
        digest.update(tensor.detach().flatten()[:64].float().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def prefix_key(model, split: Split, records, max_text_length: int, limits, dtype: str) -> str:
    """Frozen prefixes' weights, split, storage dtype, tokenisation length, image limits, pairs."""
    towers = (TowerSplit(model.text.encoder, split[0]), TowerSplit(model.vision.encoder, split[1]))
    digest = hashlib.sha256()
    digest.update(f"prefix|{split}|{dtype}|{max_text_length}|{limits!r}".encode())
    for tower in towers:
        digest.update(f"{_fingerprint_prefix(tower)}|{type(tower.encoder).__name__}|{getattr(tower.encoder, 'pooling', '')}".encode())  # fmt: skip
    for r in records:
        digest.update(f"{r.pair_id}\x1f{r.image_id}\x1f{r.caption}\x1e".encode("utf-8", "replace"))
    return digest.hexdigest()[:20]


def _verify(towers: dict[str, TowerSplit], dtype: torch.dtype):
    """A check run on the first batch: live pooled features equal the cached path's."""

    def check(ids, mask, pixels, has_image) -> None:
        for name, live_inputs in (("text", (ids, mask)), ("vision", (pixels,))):
            split = towers[name]
            if split.k == 0:
                continue
            with torch.no_grad(), eval_mode(split.encoder):
                live = split.encoder(*live_inputs)
                exact = split.prefix(*live_inputs)
                state = exact.to(dtype).float()
                cached = split.suffix(state, mask) if name == "text" else split.suffix(state)
            # the stored states themselves (fp16 underflow or overflow would zero or blow up the
            # top blocks' gradients even where the pooled output still agrees), then the output
            for what, got, want in (
                ("stored activations", state, exact),
                ("features", cached, live),
            ):
                error = float((got - want).abs().max() / want.abs().max().clamp(min=1e-30))
                if not error <= VERIFY_TOLERANCE[dtype]:
                    raise UnsupportedSplit(
                        f"{name}: cached-prefix {what} differ from live ones by {error:.2e} "
                        f"(relative) on the first batch, over the {VERIFY_TOLERANCE[dtype]:.0e} "
                        "allowed (with fp16 storage, try data.prefix_cache_dtype: float32)"
                    )

    return check


def load_or_compute_prefix(model, datamodule, split: Split, device="cpu", trainer=None) -> PrefixCache:  # fmt: skip
    """The prefix cache of the datamodule's training pairs for `split`: mapped from disk when
    complete, else computed (each rank of `trainer` its own parts, the first batch of each part
    checked both ways); bound to the model's towers."""
    records = datamodule.split("train")
    dtype = getattr(datamodule, "prefix_cache_dtype", "float16")
    key = prefix_key(model, split, records, datamodule.max_text_length, datamodule.image_limits, dtype)  # fmt: skip
    towers = {"text": TowerSplit(model.text.encoder, split[0]),
              "vision": TowerSplit(model.vision.encoder, split[1])}  # fmt: skip
    storage = STORAGE_DTYPES[dtype]
    # activations are stored in `storage`; a frozen tower's pooled features stay float32
    text_dtype, image_dtype = (storage if k else torch.float32 for k in split)
    computed = []

    def build(pairs: list[int], description: str):
        computed.append(description)
        return encode_part(
            records, pairs, description,
            lambda ids, mask: [t.to(text_dtype) for t in text_states(towers["text"], ids, mask)],
            lambda pixels: towers["vision"].prefix(pixels).to(image_dtype),
            image_shape=() if split[1] else (model.vision.output_dim,),
            text_dtype=text_dtype, image_dtype=image_dtype,
            datamodule=datamodule, device=device, on_first_batch=_verify(towers, storage),
        )  # fmt: skip

    started = time.perf_counter()
    store = load_or_build(cache_dir() / "features" / f"prefix-{key}", key,
                          [r.image_id for r in records], build,
                          what=f"prefix cache (text top {split[0]}, vision top {split[1]})",
                          **ranks_of(trainer))  # fmt: skip
    cache = PrefixCache(split=split, store=store, key=key, source="computed" if computed else "loaded")  # fmt: skip
    cache.build_s = time.perf_counter() - started
    log.info("prefix cache (text top %d, vision top %d): %s in %.1f s, %.1f MB, %s", split[0],
             split[1], cache.source, cache.build_s, cache.nbytes / 1e6, store.directory)  # fmt: skip
    return cache.bind(model)


def widest(current, spec):
    """The opening in force after `spec` is applied on top of `current` (openings never close:
    'all' stays, k then j leaves max(k, j) blocks open)."""
    if spec is None or current == "all":
        return current
    if spec == "all" or current is None:
        return spec
    return max(int(current), int(spec))


def split_of(openings: dict) -> Split | None:
    """The split for these towers' openings, or None when a tower is opened wholly."""
    if "all" in openings.values():
        return None
    return (int(openings["text"] or 0), int(openings["vision"] or 0))

"""An encoder cut below its top k blocks: the frozen prefix (run once, for a cache) and the
trainable suffix (the top blocks, the layers after them and the pooling, run every step).

Known layouts: BERT-family text towers (blocks `encoder.layer`), MobileNetV2, ViT and CLIP vision
towers. Anything else, or a parameter below the cut that would train, raises `UnsupportedSplit`.
"""

from __future__ import annotations

import contextlib
from types import SimpleNamespace

import torch
from torch import nn

from tonics.model.alignment import is_tail_parameter
from tonics.model.encoders import TextEncoder


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
        if (
            layers is encoder.blocks
            and hasattr(model, "embeddings")
            and not getattr(model.config, "is_decoder", False)
        ):
            return "bert"
    else:
        from transformers import CLIPVisionModel, MobileNetV2Model, ViTModel

        for family, cls in (
            ("mobilenet_v2", MobileNetV2Model),
            ("vit", ViTModel),
            ("clip_vision", CLIPVisionModel),
        ):
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
        names = {
            "bert": ("pooler",),
            "mobilenet_v2": ("conv_1x1", "pooler"),
            "vit": ("layernorm", "pooler"),
            "clip_vision": ("post_layernorm",),
        }[self.family]
        return [m for m in (getattr(root, n, None) for n in names) if m is not None]

    def suffix_modules(self) -> list[nn.Module]:
        """The modules a cached step runs (the only ones that may train)."""
        return [*self.top, *self._tail_modules()] if self.k else []

    def _check_prefix_stays_frozen(self, blocks: list[nn.Module]) -> None:
        """Opening top-k also opens final norms/poolers by name: they must all lie after the cut."""
        in_blocks = {id(p) for b in blocks for p in b.parameters()}
        after = {id(p) for m in self.suffix_modules() for p in m.parameters()}
        for name, p in self.encoder.model.named_parameters():
            if id(p) not in after and (
                p.requires_grad or (id(p) not in in_blocks and is_tail_parameter(name))
            ):
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
        if self.family == "bert":
            hidden, mask = state, _bidirectional_mask(self.encoder.model, state, attention_mask)
            for block in self.top:
                hidden = _first(block(hidden, mask))
            return self.encoder.pool(hidden, attention_mask)
        return self.encoder.pool(self.vision_output(state))

    def vision_output(self, state: torch.Tensor) -> SimpleNamespace:
        """The vision tower's output (`last_hidden_state`, `pooler_output`) from cached states,
        through the top blocks as they are now: what `suffix` pools, and the token map a
        captioning head reads."""
        model, hidden = self.encoder.model, state
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
        return SimpleNamespace(last_hidden_state=last, pooler_output=pooled)


def text_states(split: TowerSplit, ids: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
    """One cached text state per caption: its tokens' hidden states (k > 0) or pooled vector."""
    state = split.prefix(ids, mask)
    if split.k == 0:
        return list(state.float().cpu())
    return [state[j][mask[j].bool()].cpu() for j in range(len(state))]

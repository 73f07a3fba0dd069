"""A CoCa-style captioning head: attentional pooling of the vision tower's token map, then a
transformer text decoder (causal self-attention + cross-attention to the pooled image tokens)
that predicts a caption token by token (Yu et al. 2022, "Contrastive Captioners").

The decoder is transformers' `BertLMHeadModel` (a BERT decoder with cross-attention; its output
layer is tied to its word embeddings), sized by `CaptionSettings`, with the text tower's tokenizer
and vocabulary; where the widths match, its word embeddings start as a copy of the text tower's
(a copy, so the text tower's own freezing schedule stays its own). Image tokens: a convolutional
feature map (B, C, H, W) becomes H*W tokens of width C; a transformer's hidden states are used
as they are. The loss is teacher-forced cross-entropy over the caption's real tokens (padding
ignored), the first token ([CLS]) serving as the start token and [SEP] as the end.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from tonics.errors import require, require_number


@dataclass(frozen=True)
class CaptionSettings:
    """The decoder's size: `layers` transformer layers of `heads` heads, `queries` attentional
    pooling queries over the image tokens, `max_length` tokens per caption (start and end
    included), `dropout`; width: the text tower's (so word embeddings can start from it)."""

    layers: int = 2
    heads: int = 4
    queries: int = 32
    max_length: int = 32
    dropout: float = 0.1

    @classmethod
    def from_dict(cls, values: dict | None) -> CaptionSettings:
        """Settings from the YAML `model.spec.captioner` mapping; errors name the key."""
        values = dict(values or {})
        unknown = set(values) - set(cls.__dataclass_fields__)
        require(
            not unknown,
            "model.spec.captioner",
            f"unknown key(s) {sorted(unknown)}; known: {sorted(cls.__dataclass_fields__)}",
        )
        settings = cls(**values)
        for key in ("layers", "heads", "queries"):
            require_number(
                getattr(settings, key), f"model.spec.captioner.{key}", low=1, integer=True
            )
        require_number(settings.max_length, "model.spec.captioner.max_length", low=3, integer=True)
        require_number(settings.dropout, "model.spec.captioner.dropout", low=0, high=1)
        return settings

    def to_dict(self) -> dict:
        """Plain values, for configs and exports."""
        return asdict(self)


def image_tokens(last_hidden_state: torch.Tensor) -> torch.Tensor:
    """(batch, tokens, width) from a vision tower's last hidden state: a (B, C, H, W) feature map
    becomes H*W tokens of width C; (B, N, D) hidden states are already tokens."""
    if last_hidden_state.dim() == 4:
        return last_hidden_state.flatten(2).transpose(1, 2)
    return last_hidden_state


class AttentionalPooler(nn.Module):
    """`queries` learned vectors attending to the image tokens (CoCa's attentional pooling)."""

    def __init__(self, width: int, context_width: int, heads: int, queries: int) -> None:
        super().__init__()
        self.queries = nn.Parameter(torch.randn(queries, width) * width**-0.5)
        self.context_norm = nn.LayerNorm(context_width)
        self.attention = nn.MultiheadAttention(
            width, heads, kdim=context_width, vdim=context_width, batch_first=True
        )
        self.norm = nn.LayerNorm(width)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(batch, queries, width) summaries of (batch, tokens, context_width) image tokens."""
        context = self.context_norm(tokens)
        queries = self.queries.unsqueeze(0).expand(tokens.shape[0], -1, -1)
        pooled, _ = self.attention(queries, context, context, need_weights=False)
        return self.norm(pooled)


def decoder_config(settings: CaptionSettings, vocab_size: int, width: int, special: dict):
    """The `BertConfig` of the decoder: `special` gives pad/bos/eos token ids."""
    from transformers import BertConfig

    heads = settings.heads
    require(
        width % heads == 0,
        "model.spec.captioner.heads",
        f"{heads} does not divide the text tower's width {width}",
    )
    return BertConfig(
        vocab_size=vocab_size,
        hidden_size=width,
        num_hidden_layers=settings.layers,
        num_attention_heads=heads,
        intermediate_size=4 * width,
        hidden_dropout_prob=settings.dropout,
        attention_probs_dropout_prob=settings.dropout,
        max_position_embeddings=settings.max_length,
        is_decoder=True,
        add_cross_attention=True,
        tie_word_embeddings=True,
        **special,
    )


class CaptionHead(nn.Module):
    """Attentional pooler + BERT decoder: logits of the next caption token given the image."""

    def __init__(
        self,
        settings: CaptionSettings,
        *,
        vocab_size: int,
        width: int,
        image_width: int,
        special: dict,
        word_embeddings: nn.Embedding | None = None,
    ) -> None:
        super().__init__()
        from transformers import BertLMHeadModel

        self.settings = settings
        self.special = dict(special)
        self.pooler = AttentionalPooler(width, image_width, settings.heads, settings.queries)
        self.decoder = BertLMHeadModel(decoder_config(settings, vocab_size, width, special))
        if word_embeddings is not None and tuple(word_embeddings.weight.shape) == (
            vocab_size,
            width,
        ):
            with torch.no_grad():
                self.decoder.get_input_embeddings().weight.copy_(word_embeddings.weight)

    def context(self, tokens: torch.Tensor) -> torch.Tensor:
        """The pooled image tokens the decoder cross-attends to."""
        return self.pooler(tokens)

    def logits(
        self, context: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        """(batch, length, vocab) next-token logits for every prefix of `input_ids`."""
        out = self.decoder(
            input_ids=input_ids,
            attention_mask=attention_mask,
            encoder_hidden_states=context,
            use_cache=False,
        )
        return out.logits

    def next_logits(self, context: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
        """(batch, vocab) logits of the token after `input_ids` (no padding): the output layer is
        applied to the last position only, as generation needs."""
        hidden = self.decoder.bert(
            input_ids=input_ids,
            attention_mask=torch.ones_like(input_ids),
            encoder_hidden_states=context,
            use_cache=False,
        ).last_hidden_state
        return self.decoder.cls(hidden[:, -1])

    def loss(
        self, tokens: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        """Teacher-forced captioning loss of these images' captions (`caption_loss`)."""
        limit = self.settings.max_length
        ids, mask = input_ids[:, :limit], attention_mask[:, :limit]
        return caption_loss(self.logits(self.context(tokens), ids, mask), ids, mask)


def caption_loss(
    logits: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
) -> torch.Tensor:
    """Mean cross-entropy of predicting token t+1 from tokens <= t, over the real (unpadded)
    target tokens of the batch: position t's logits are scored against `input_ids[:, t+1]`."""
    targets = input_ids[:, 1:].masked_fill(attention_mask[:, 1:] == 0, -100)
    return F.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]).float(), targets.reshape(-1), ignore_index=-100
    )

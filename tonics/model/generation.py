"""Caption generation with a `CaptionHead`: greedy decoding and beam search.

Written here rather than through transformers' `generate`, whose cache handling for a BERT decoder
with cross-attention fails in transformers 5 (`DynamicCache` without `is_updated`) and whose
beam expansion of `encoder_hidden_states` passed as a model keyword is not documented. Both
decoders recompute the whole prefix at each step (captions are short); deterministic. As
transformers' `min_new_tokens` and `suppress_tokens` do, the end token is masked until a caption
holds `min_length` tokens and the start and padding tokens are never generated, so a caption is
never empty.
"""

from __future__ import annotations

import torch

from tonics.model.captioner import CaptionHead


@torch.no_grad()
def generate(
    head: CaptionHead,
    tokens: torch.Tensor,
    *,
    beams: int = 1,
    max_length: int | None = None,
    length_penalty: float = 1.0,
    min_length: int = 1,
) -> list[list[int]]:
    """Token ids of one caption per image (start and end tokens removed), from image tokens
    (batch, tokens, width): greedy when `beams` is 1, else beam search whose finished captions
    (ended by the end token) are ranked by log-probability / length ** `length_penalty`; captions
    cut at the length limit compete only when none finished. The end token cannot come before
    `min_length` caption tokens."""
    if beams < 1:
        raise ValueError(f"beams must be >= 1, got {beams}")
    if min_length < 0:
        raise ValueError(f"min_length must be >= 0, got {min_length}")
    was_training = head.training
    head.eval()
    try:
        limit = min(max_length or head.settings.max_length, head.settings.max_length)
        context = head.context(tokens)
        step = _Scorer(head, min_length)
        if beams == 1:
            return _greedy(head, context, limit, step)
        return [
            _beam(head, context[i : i + 1], beams, limit, length_penalty, step)
            for i in range(len(context))
        ]
    finally:
        head.train(was_training)


def _strip(ids: list[int], head: CaptionHead) -> list[int]:
    """Drop the start token and everything from the end token on."""
    eos = head.special["eos_token_id"]
    body = ids[1:]
    return body[: body.index(eos)] if eos in body else body


class _Scorer:
    """Next-token log-probabilities with the start and padding tokens never generated and the end
    token masked until a caption holds `min_length` tokens (log-softmax first, then the masks, as
    transformers' logits processors do in beam search)."""

    def __init__(self, head: CaptionHead, min_length: int) -> None:
        self.head, self.min_length = head, min_length
        self.eos = head.special["eos_token_id"]
        never = (head.special.get("bos_token_id"), head.special.get("pad_token_id"))
        self.never = sorted({t for t in never if t is not None and t != self.eos})

    def __call__(self, context: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        logprobs = self.head.next_logits(context, ids).float().log_softmax(-1)
        logprobs[:, self.never] = float("-inf")
        if ids.shape[1] - 1 < self.min_length:  # every row holds the same number of tokens
            logprobs[:, self.eos] = float("-inf")
        return logprobs


def _greedy(
    head: CaptionHead, context: torch.Tensor, limit: int, scores: _Scorer
) -> list[list[int]]:
    bos, eos = head.special["bos_token_id"], head.special["eos_token_id"]
    ids = torch.full((context.shape[0], 1), bos, dtype=torch.long, device=context.device)
    done = torch.zeros(context.shape[0], dtype=torch.bool, device=context.device)
    while ids.shape[1] < limit and not bool(done.all()):
        step = scores(context, ids).argmax(-1).masked_fill(done, eos)
        ids = torch.cat([ids, step[:, None]], dim=1)
        done |= step == eos
    return [_strip(row, head) for row in ids.tolist()]


def _beam(
    head: CaptionHead,
    context: torch.Tensor,
    beams: int,
    limit: int,
    length_penalty: float,
    scores: _Scorer,
) -> list[int]:
    """Beam search for one image (context: (1, queries, width))."""
    bos, eos = head.special["bos_token_id"], head.special["eos_token_id"]
    live = [([bos], 0.0)]
    finished: list[tuple[float, list[int]]] = []
    while live and len(live[0][0]) < limit:
        ids = torch.tensor([seq for seq, _ in live], device=context.device)
        top = scores(context.expand(len(live), -1, -1), ids).topk(beams, dim=-1)
        candidates = [
            (score + float(value), seq + [int(token)])
            for (seq, score), values, tokens in zip(live, top.values, top.indices)
            for value, token in zip(values, tokens)
            if value > float("-inf")
        ]
        candidates.sort(key=lambda c: -c[0])  # stable: ties keep beam, then token order
        live = []
        # every ended candidate competes, not only those ranked above the last kept beam (at the
        # length limit the kept beams are cut, and an ended caption below them may be the best)
        for score, seq in candidates:
            if seq[-1] == eos:
                finished.append((score / (len(seq) - 1) ** length_penalty, seq))
            elif len(live) < beams:
                live.append((seq, score))
        if len(finished) >= beams:
            break
    if not finished:
        finished = [(score / max(1, len(seq) - 1) ** length_penalty, seq) for seq, score in live]
    best = max(finished, key=lambda f: f[0])
    return _strip(best[1], head)

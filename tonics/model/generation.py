"""Caption generation with a `CaptionHead`: greedy decoding and beam search.

Written here rather than through transformers' `generate`, whose cache handling for a BERT decoder
with cross-attention fails in transformers 5 (`DynamicCache` without `is_updated`) and whose
beam expansion of `encoder_hidden_states` passed as a model keyword is not documented. Both
decoders recompute the whole prefix at each step (captions are short); deterministic.
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
) -> list[list[int]]:
    """Token ids of one caption per image (start and end tokens removed), from image tokens
    (batch, tokens, width): greedy when `beams` is 1, else beam search whose finished captions
    (ended by the end token) are ranked by log-probability / length ** `length_penalty`; captions
    cut at the length limit compete only when none finished."""
    if beams < 1:
        raise ValueError(f"beams must be >= 1, got {beams}")
    was_training = head.training
    head.eval()
    try:
        limit = min(max_length or head.settings.max_length, head.settings.max_length)
        context = head.context(tokens)
        if beams == 1:
            return _greedy(head, context, limit)
        return [
            _beam(head, context[i : i + 1], beams, limit, length_penalty)
            for i in range(len(context))
        ]
    finally:
        head.train(was_training)


def _strip(ids: list[int], head: CaptionHead) -> list[int]:
    """Drop the start token and everything from the end token on."""
    eos = head.special["eos_token_id"]
    body = ids[1:]
    return body[: body.index(eos)] if eos in body else body


def _greedy(head: CaptionHead, context: torch.Tensor, limit: int) -> list[list[int]]:
    bos, eos = head.special["bos_token_id"], head.special["eos_token_id"]
    ids = torch.full((context.shape[0], 1), bos, dtype=torch.long, device=context.device)
    done = torch.zeros(context.shape[0], dtype=torch.bool, device=context.device)
    while ids.shape[1] < limit and not bool(done.all()):
        logits = head.next_logits(context, ids)
        step = logits.argmax(-1).masked_fill(done, eos)
        ids = torch.cat([ids, step[:, None]], dim=1)
        done |= step == eos
    return [_strip(row, head) for row in ids.tolist()]


def _beam(
    head: CaptionHead, context: torch.Tensor, beams: int, limit: int, length_penalty: float
) -> list[int]:
    """Beam search for one image (context: (1, queries, width))."""
    bos, eos = head.special["bos_token_id"], head.special["eos_token_id"]
    live = [([bos], 0.0)]
    finished: list[tuple[float, list[int]]] = []
    while live and len(live[0][0]) < limit:
        ids = torch.tensor([seq for seq, _ in live], device=context.device)
        logits = head.next_logits(context.expand(len(live), -1, -1), ids)
        logprobs = logits.float().log_softmax(-1)
        top = logprobs.topk(beams, dim=-1)
        candidates = [
            (score + float(value), seq + [int(token)])
            for (seq, score), values, tokens in zip(live, top.values, top.indices)
            for value, token in zip(values, tokens)
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

"""Classification losses: class-weighted cross-entropy (ASTRAFier sect. 5,
w_c = N_total / N_c), soft F1 (ATCAT sect. 2.3.2) and focal loss (ATCAT sect. 2.7, with
the weight detached from the gradient as the paper found best)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lcfm.exceptions import ConfigError

LOSSES = ("weighted_ce", "ce", "soft_f1", "focal")


def class_weights(counts, *, normalise: bool = True) -> torch.Tensor:
    """w_c = N_total / N_c for classes with examples (0 for absent classes)."""
    counts = torch.as_tensor(counts, dtype=torch.float32)
    weights = torch.where(counts > 0, counts.sum() / counts.clamp(min=1), torch.zeros(()))
    if normalise:  # keep the loss on the scale of plain cross-entropy
        weights = weights * (counts > 0).sum() / weights.sum()
    return weights


def soft_f1_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """1 - macro soft F1, with m_ij = sum_x f(x)_i 1{y=j} from softmax scores."""
    probs = logits.softmax(dim=-1)  # (batch, classes)
    onehot = F.one_hot(labels, probs.shape[-1]).to(probs.dtype)
    tp = (probs * onehot).sum(0)
    fp = (probs * (1 - onehot)).sum(0)
    fn = ((1 - probs) * onehot).sum(0)
    f1 = 2 * tp / (2 * tp + fp + fn + 1e-8)
    present = onehot.sum(0) > 0
    return 1 - f1[present].mean()


def focal_loss(logits: torch.Tensor, labels: torch.Tensor, gamma: float = 0.5) -> torch.Tensor:
    log_q = logits.log_softmax(dim=-1).gather(1, labels[:, None]).squeeze(1)
    weight = (1 - log_q.exp()).pow(gamma).detach()
    return -(weight * log_q).mean()


def classification_loss(name: str, logits, labels, weights: torch.Tensor | None = None):
    if name == "weighted_ce":
        return F.cross_entropy(logits, labels, weight=None if weights is None
                               else weights.to(logits.device, logits.dtype))
    if name == "ce":
        return F.cross_entropy(logits, labels)
    if name == "soft_f1":
        return soft_f1_loss(logits, labels)
    if name == "focal":
        return focal_loss(logits, labels)
    raise ConfigError(f"unknown loss {name!r}; losses: {', '.join(LOSSES)}")

"""Classification losses: class-weighted cross-entropy (ASTRAFier sect. 5,
w_c = N_total / N_c), soft F1 (ATCAT sect. 2.3.2) and focal loss (ATCAT sect. 2.7, with
the weight detached from the gradient as the paper found best), alone or as a weighted sum
(ATCAT sect. 3.5.4: log-loss + soft F1), with label smoothing on the cross-entropies
(ATCAT sect. 2.7, after Szegedy et al. 2015 sect. 7)."""

from __future__ import annotations

from collections.abc import Mapping

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


def check_loss(spec, *, where: str = "--loss", allow_model: bool = False) -> None:
    """A loss name of LOSSES, {name: weight, ...} of them, or (`allow_model`) "model"."""
    if allow_model and spec == "model":
        return
    terms = dict(spec) if isinstance(spec, Mapping) else {spec: 1.0}
    unknown = [str(name) for name in terms if name not in LOSSES]
    if unknown or not terms:
        extra = ', or "model"' if allow_model else ""
        raise ConfigError(f"{where} {spec!r}: unknown loss {', '.join(unknown) or '(none)'};"
                          f" losses: {', '.join(LOSSES)}{extra}")
    bad = [name for name, w in terms.items() if not isinstance(w, (int, float)) or w < 0]
    if bad:
        raise ConfigError(f"{where} {spec!r}: weights must be non-negative numbers")


def parse_loss(text: str) -> str | dict[str, float]:
    """`ce+soft_f1` or `ce:1,soft_f1:0.5` -> {name: weight}; a single name stays a name."""
    text = str(text).strip()
    if "+" not in text and "," not in text and ":" not in text:
        return text
    terms = {}
    for part in text.replace("+", ",").split(","):
        name, _, weight = part.strip().partition(":")
        try:
            terms[name.strip()] = float(weight) if weight else 1.0
        except ValueError:
            raise ConfigError(f"--loss {text!r}: weight {weight!r} is not a number") from None
    return terms


def combined_loss(spec, logits, labels, weights: torch.Tensor | None = None, *,
                  label_smoothing: float = 0.0) -> torch.Tensor:
    """The weighted sum of the losses `spec` names (a name or {name: weight})."""
    terms = dict(spec) if isinstance(spec, Mapping) else {spec: 1.0}
    total = None
    for name, weight in terms.items():
        if not weight:
            continue
        value = classification_loss(name, logits, labels, weights,
                                    label_smoothing=label_smoothing)
        total = weight * value if total is None else total + weight * value
    return total if total is not None else logits.sum() * 0.0


def classification_loss(name: str, logits, labels, weights: torch.Tensor | None = None, *,
                        label_smoothing: float = 0.0):
    if name == "weighted_ce":
        return F.cross_entropy(logits, labels, weight=None if weights is None
                               else weights.to(logits.device, logits.dtype),
                               label_smoothing=label_smoothing)
    if name == "ce":
        return F.cross_entropy(logits, labels, label_smoothing=label_smoothing)
    if name == "soft_f1":
        return soft_f1_loss(logits, labels)
    if name == "focal":
        return focal_loss(logits, labels)
    raise ConfigError(f"unknown loss {name!r}; losses: {', '.join(LOSSES)}")

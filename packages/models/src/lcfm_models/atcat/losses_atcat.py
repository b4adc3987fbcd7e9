"""Classification losses of ATCAT (paper 003_05ad419fc2efc3e7.txt, sect. 2.2.5, 2.6, 2.7).

All functions take "full" logits: the class logits followed by the "unsure" logit when the
model has one, so that scores are "calculated as a softmax ... including this class".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE = -100


def last_point_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Log-loss of the classification at the last valid point. logits (batch, C[+1])."""
    return F.cross_entropy(logits, labels, ignore_index=IGNORE)


def early_classification_loss(step_logits: torch.Tensor, labels: torch.Tensor,
                              point_mask: torch.Tensor) -> torch.Tensor:
    """Sect. 2.6: log-loss at every light-curve point except the first ("it may be too
    noisy"), averaged over each example's points first "so that long examples would not get
    disproportionately more loss". The model adds its last-point loss with 1/3 of this weight.

    step_logits (batch, time, C[+1]); point_mask (batch, time) True at light-curve points."""
    batch, length, width = step_logits.shape
    first_point = point_mask.int().cumsum(dim=1) == 1
    use = point_mask & ~first_point & (labels != IGNORE).unsqueeze(1)
    per_step = F.cross_entropy(step_logits.reshape(-1, width),
                               labels.clamp(min=0).repeat_interleave(length),
                               reduction="none").view(batch, length)
    counts = use.sum(dim=1)
    per_example = (per_step * use).sum(dim=1) / counts.clamp(min=1)
    has_steps = counts > 0
    return per_example[has_steps].mean() if has_steps.any() else step_logits.sum() * 0.0


def unsure_calibration_targets(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Soft targets of sect. 2.7 (iii): the "unsure" output should be chosen at the rate the
    model is wrong in this batch, more for examples it is less confident about.

        cc_b      = mean(q_true, max(0, 2 (q_true - 1/2)))
        unsure'_b = 0.1 / N_classes + (1 - cc_b)
        unsure_b  = (1 - accuracy) / mean_b(unsure') * unsure'_b     (clamped to [0, 1])

    The printed formula has min(0, .), which would give a fully confident correct example
    cc = 1/2; max gives the "smoothed confident and correct score" the text describes. The
    true class gets 1 - unsure_b, the unsure output unsure_b. Everything is detached.
    logits (batch, C + 1) with the unsure logit last; labels must all be valid."""
    with torch.no_grad():
        n_classes = logits.shape[-1] - 1
        probabilities = logits.softmax(dim=-1)
        q_true = probabilities.gather(1, labels.unsqueeze(1)).squeeze(1)
        accuracy = (logits[:, :n_classes].argmax(dim=-1) == labels).float().mean()
        confident_correct = 0.5 * (q_true + (2 * (q_true - 0.5)).clamp(min=0))
        unsure_raw = 0.1 / n_classes + (1 - confident_correct)
        unsure = ((1 - accuracy) / unsure_raw.mean() * unsure_raw).clamp(0.0, 1.0)
        targets = torch.zeros_like(probabilities)
        targets.scatter_(1, labels.unsqueeze(1), (1 - unsure).unsqueeze(1))
        targets[:, -1] += unsure
    return targets


def unsure_calibration_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """KL(targets || softmax(logits)) towards `unsure_calibration_targets`, batch mean over
    labelled examples."""
    keep = labels != IGNORE
    if not keep.any():
        return logits.sum() * 0.0
    logits, labels = logits[keep], labels[keep]
    targets = unsure_calibration_targets(logits, labels)
    return F.kl_div(logits.log_softmax(dim=-1), targets, reduction="batchmean")


__all__ = [
    "IGNORE", "early_classification_loss", "last_point_loss", "unsure_calibration_loss",
    "unsure_calibration_targets",
]

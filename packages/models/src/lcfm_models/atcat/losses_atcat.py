"""Classification objective of ATCAT (paper 003_05ad419fc2efc3e7.txt, sect. 2.2.5, 2.3.2,
2.6, 2.7, 2.2.2).

All functions take "full" logits: the class logits followed by the "unsure" logit when the
model has one, so that scores are "calculated as a softmax ... including this class"
(sect. 2.2.5). The "unsure" output is trained by that softmax (the true class is pushed up,
every other output, "unsure" included, down), or towards a calibration target (sect. 2.7).

`atcat_objective` combines the terms as `AtcatConfig` says (each weight cites its section):

* default (sect. 2.3, 3.5.4 Table 7 "ATCAT default"): log_loss_weight x log-loss
  + soft_f1_weight x (1 - soft macro F1), both at the last valid point;
* `unsure_calibration` (sect. 2.7 iii): the log-loss term becomes KL(target || q) towards
  the batch-accuracy "unsure" target; the soft F1 term stays towards the true label;
* `unsure_teacher` (sect. 2.7 iv): likewise towards a bootstrap ensemble's target, p_true
  on the true class and 1 - p_true on "unsure" (`teacher_p_true`, computed by the plugin's
  fine-tuning hook on each training batch);
* `early_classification` (sect. 2.6): early_loss_weight x (log-loss at every point but the
  first, averaged per example first) + early_loss_weight x early_last_point_ratio (1/3) x the
  last-point log-loss ("in the form of logloss, not Soft F1");
* label smoothing (sect. 2.7 i): the true class keeps 1 - eps, every class gets eps / n;
* plus the metadata L1 penalty (sect. 2.2.2), added by the caller.

`class_weights` (per class, optional) are the w_{x,y} of sect. 2.3.2: they weight each
example's log-loss and its row of the soft confusion matrix. With balanced batches (the
paper's sampler) none are needed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from lcfm.exceptions import ConfigError

IGNORE = -100


def smoothed_targets(labels: torch.Tensor, width: int, n_classes: int,
                     smoothing: float) -> torch.Tensor:
    """(batch, width) targets: 1 - eps on the label, + eps / n_classes on every class
    (sect. 2.7 i, "adds eps/n to the true probabilities ... subtracting from the label
    class' probability"); the "unsure" column (width > n_classes) gets none."""
    targets = torch.zeros(labels.shape[0], width, dtype=torch.float32, device=labels.device)
    targets.scatter_(1, labels.unsqueeze(1), 1.0 - smoothing)
    targets[:, :n_classes] += smoothing / n_classes
    return targets


def _weighted_mean(values: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    if weights is None:
        return values.mean()
    return (values * weights).sum() / weights.sum().clamp(min=1e-12)


def log_loss(logits: torch.Tensor, labels: torch.Tensor, n_classes: int,
             smoothing: float = 0.0, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy of softmax(logits) (batch, C[+1]) towards the (smoothed) labels;
    `weights` (batch,) per example. Labels must all be valid."""
    targets = smoothed_targets(labels, logits.shape[-1], n_classes, smoothing)
    per_example = -(targets * logits.float().log_softmax(dim=-1)).sum(dim=-1)
    return _weighted_mean(per_example, weights)


def soft_f1_loss(logits: torch.Tensor, labels: torch.Tensor, n_classes: int,
                 weights: torch.Tensor | None = None) -> torch.Tensor:
    """1 - soft macro F1 (sect. 2.3.2): m_ij = sum_x w_x f(x)_i 1{y = j} with f the softmax
    over all outputs ("unsure" included, so its mass counts as a miss of the true class);
    F1_i = 2 m_ii / (sum_j m_ij + sum_j m_ji) = 2 TP / (2 TP + FP + FN), averaged over the
    classes present in the batch."""
    probs = logits.float().softmax(dim=-1)[:, :n_classes]  # (batch, C)
    onehot = F.one_hot(labels, n_classes).float()
    w = torch.ones_like(labels, dtype=torch.float32) if weights is None else weights.float()
    confusion = (probs * w[:, None]).T @ onehot  # m_ij: predicted i, true j
    tp = confusion.diagonal()
    predicted = confusion.sum(dim=1)  # TP + FP
    true = (onehot * w[:, None]).sum(dim=0)  # TP + FN (FN includes mass on "unsure")
    f1 = 2 * tp / (predicted + true).clamp(min=1e-8)
    present = onehot.sum(dim=0) > 0
    return 1 - f1[present].mean()


def early_classification_loss(step_logits: torch.Tensor, labels: torch.Tensor,
                              point_mask: torch.Tensor, n_classes: int | None = None,
                              smoothing: float = 0.0,
                              weights: torch.Tensor | None = None) -> torch.Tensor:
    """Sect. 2.6: log-loss at every light-curve point except the first ("it may be too
    noisy"), averaged over each example's points first "so that long examples would not get
    disproportionately more loss", then over examples (weighted by `weights`).

    step_logits (batch, time, C[+1]); point_mask (batch, time) True at light-curve points;
    labels (batch,) with IGNORE rows left out."""
    batch, length, width = step_logits.shape
    n_classes = width if n_classes is None else n_classes
    first_point = point_mask.int().cumsum(dim=1) == 1
    use = point_mask & ~first_point & (labels != IGNORE).unsqueeze(1)
    targets = smoothed_targets(labels.clamp(min=0), width, n_classes, smoothing)
    per_step = -(targets.unsqueeze(1) * step_logits.float().log_softmax(dim=-1)).sum(-1)
    counts = use.sum(dim=1)
    per_example = (per_step * use).sum(dim=1) / counts.clamp(min=1)
    has_steps = counts > 0
    if not has_steps.any():
        return step_logits.sum() * 0.0
    return _weighted_mean(per_example[has_steps],
                          None if weights is None else weights[has_steps])


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
        probabilities = logits.float().softmax(dim=-1)
        q_true = probabilities.gather(1, labels.unsqueeze(1)).squeeze(1)
        accuracy = (logits[:, :n_classes].argmax(dim=-1) == labels).float().mean()
        confident_correct = 0.5 * (q_true + (2 * (q_true - 0.5)).clamp(min=0))
        unsure_raw = 0.1 / n_classes + (1 - confident_correct)
        unsure = ((1 - accuracy) / unsure_raw.mean() * unsure_raw).clamp(0.0, 1.0)
        targets = torch.zeros_like(probabilities)
        targets.scatter_(1, labels.unsqueeze(1), (1 - unsure).unsqueeze(1))
        targets[:, -1] += unsure
    return targets


def teacher_targets(p_true: torch.Tensor, labels: torch.Tensor, width: int) -> torch.Tensor:
    """Targets of sect. 2.7 (iv): the true class gets the bootstrap ensemble's probability
    of it, p_true, and the "unsure" output (last column) 1 - p_true. p_true (batch,)."""
    targets = torch.zeros(labels.shape[0], width, dtype=torch.float32, device=labels.device)
    p_true = p_true.detach().float().clamp(0.0, 1.0)
    targets.scatter_(1, labels.unsqueeze(1), p_true.unsqueeze(1))
    targets[:, -1] += 1.0 - p_true
    return targets


def soft_target_loss(logits: torch.Tensor, targets: torch.Tensor,
                     weights: torch.Tensor | None = None) -> torch.Tensor:
    """KL(targets || softmax(logits)) per example, (weighted) batch mean."""
    log_q = logits.float().log_softmax(dim=-1)
    per_example = F.kl_div(log_q, targets, reduction="none").sum(dim=-1)
    return _weighted_mean(per_example, weights)


def unsure_calibration_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """KL(targets || softmax(logits)) towards `unsure_calibration_targets`, batch mean over
    labelled examples."""
    keep = labels != IGNORE
    if not keep.any():
        return logits.sum() * 0.0
    logits, labels = logits[keep], labels[keep]
    return soft_target_loss(logits, unsure_calibration_targets(logits, labels))


def unsure_probability(logits: torch.Tensor, unsure_logits: torch.Tensor) -> torch.Tensor:
    """P("unsure") = softmax(cat(logits, unsure))[-1] = sigmoid(unsure - logsumexp(logits)).
    logits (..., C), unsure_logits (...) -> (...)."""
    return torch.sigmoid(unsure_logits.float() - logits.float().logsumexp(dim=-1))


@dataclass
class ObjectiveTerms:
    """The objective (`total`, with gradient) and its parts, detached (None: not used).
    Parts stay tensors so that reading them costs no device synchronisation."""

    total: torch.Tensor
    log_loss: torch.Tensor | None = None
    soft_f1: torch.Tensor | None = None
    early: torch.Tensor | None = None
    last_point: torch.Tensor | None = None
    metadata_l1: torch.Tensor | None = None
    mean_p_unsure: torch.Tensor | None = None

    def as_dict(self) -> dict[str, torch.Tensor]:
        """Name -> detached scalar tensor of every part used ("loss" is the total)."""
        parts = {"loss": self.total, "log_loss": self.log_loss, "soft_f1": self.soft_f1,
                 "early": self.early, "last_point": self.last_point,
                 "metadata_l1": self.metadata_l1, "mean_p_unsure": self.mean_p_unsure}
        return {k: v.detach() for k, v in parts.items() if v is not None}

    def floats(self) -> dict[str, float]:
        return {k: float(v) for k, v in self.as_dict().items()}


def atcat_objective(config, full_logits: torch.Tensor, labels: torch.Tensor, *,
                    step_logits: torch.Tensor | None = None,
                    point_mask: torch.Tensor | None = None,
                    metadata_penalty: torch.Tensor | float = 0.0,
                    class_weights: torch.Tensor | None = None,
                    label_smoothing: float | None = None,
                    teacher_p_true: torch.Tensor | None = None) -> ObjectiveTerms:
    """ATCAT's fine-tuning objective (module docstring) from an `AtcatConfig`.

    full_logits (batch, C[+1]) at the last point; step_logits (batch, time, C[+1]) and
    point_mask (batch, time), needed with `config.early_classification`; labels (batch,),
    IGNORE rows left out; metadata_penalty: sum |metadata input weights| (multiplied here by
    `config.metadata_l1`); label_smoothing: overrides `config.label_smoothing`;
    teacher_p_true (batch,): a bootstrap ensemble's probability of each example's true
    class, whose sect. 2.7 (iv) target replaces the last-point log-loss."""
    n_classes = int(config.num_labels)
    smoothing = float(config.label_smoothing if label_smoothing is None else label_smoothing)
    labels = labels.long()
    keep = labels != IGNORE
    penalty = config.metadata_l1 * metadata_penalty
    if not keep.any():
        zero = full_logits.sum() * 0.0
        return ObjectiveTerms(total=zero + penalty)
    logits, kept = full_logits[keep], labels[keep]
    weights = None if class_weights is None else class_weights.to(logits.device).float()[kept]
    if teacher_p_true is not None:  # sect. 2.7 (iv): KL towards the ensemble's target
        targets = teacher_targets(teacher_p_true[keep], kept, logits.shape[-1])
        last = soft_target_loss(logits, targets, weights)
    elif config.unsure_calibration:  # sect. 2.7 (iii): KL towards the "unsure" target
        last = soft_target_loss(logits, unsure_calibration_targets(logits, kept), weights)
    else:
        last = log_loss(logits, kept, n_classes, smoothing, weights)
    terms = ObjectiveTerms(total=last, last_point=last.detach())
    if config.early_classification:  # sect. 2.6: early loss + 1/3 last-point log-loss
        if step_logits is None or point_mask is None:
            raise ConfigError("AtcatConfig.early_classification: the objective needs the "
                              "step logits and the point mask (forward in training mode)")
        early = early_classification_loss(step_logits[keep], kept, point_mask[keep],
                                          n_classes, smoothing, weights)
        total = config.early_loss_weight * (early + config.early_last_point_ratio * last)
        terms.early = early.detach()
    else:  # sect. 2.3 / Table 7: log-loss + soft F1
        f1 = soft_f1_loss(logits, kept, n_classes, weights)
        total = config.log_loss_weight * last + config.soft_f1_weight * f1
        terms.soft_f1, terms.log_loss = f1.detach(), last.detach()
    terms.total = total + penalty
    if torch.is_tensor(penalty):
        terms.metadata_l1 = penalty.detach()
    if full_logits.shape[-1] > n_classes:
        terms.mean_p_unsure = unsure_probability(
            logits[:, :n_classes], logits[:, n_classes]).mean().detach()
    return terms


__all__ = [
    "IGNORE", "ObjectiveTerms", "atcat_objective", "early_classification_loss", "log_loss",
    "smoothed_targets", "soft_f1_loss", "soft_target_loss", "teacher_targets",
    "unsure_calibration_loss", "unsure_calibration_targets", "unsure_probability",
]

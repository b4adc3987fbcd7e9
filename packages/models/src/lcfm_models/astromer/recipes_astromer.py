"""Astromer 1 and 2 training recipes (Donoso-Oliva et al., Astromer 2,
shared/papers/001_0ee157db3fd4b444.txt). The Astromer 2 text gives the objective, masking,
windows and the few-shot protocol (sect. 2.3-2.5, 3.3, 5.1, 5.4) but no optimiser, learning
rate, batch size or schedule; those fields say so and name the value lcfm chose."""

from __future__ import annotations

from lcfm.recipes import MIN_WARMUP_STEPS, Recipe

PAPER = "Donoso-Oliva et al., Astromer 2 (shared/papers/001_0ee157db3fd4b444.txt)"
_SILENT_OPT = ("paper silent (no optimiser named): chose Adam, the usual optimiser of "
               "BERT-style masked reconstruction, without weight decay")
_PRETRAIN_SOURCES = {
    "optimizer": _SILENT_OPT,
    "betas": "paper silent: chose Adam's defaults (0.9, 0.999)",
    "eps": "paper silent: chose Adam's default 1e-8",
    "weight_decay": _SILENT_OPT,
    "learning_rate": "paper silent: chose 1e-3, a common rate for encoders of this size "
                     "(4 M parameters, sect. 3.2)",
    "schedule": "paper silent: chose a constant rate after warm-up (no schedule is "
                "described; the learning curves of Fig. 6 decay smoothly)",
    "warmup_steps": f"paper silent: chose lcfm's minimum warm-up ({MIN_WARMUP_STEPS} steps)",
    "max_grad_norm": "paper silent: no clipping mentioned, none applied",
    "batch_size": "paper silent: chose 256 windows of 200 observations",
    "max_steps": "paper silent (trained ~3 days on 4 A5000 GPUs, sect. 5): chose 10000 "
                 "steps; give --max-steps for longer runs",
    "loss": "the model's masked-reconstruction RMSE: eq. 4 (Astromer 1, sect. 2.5), eq. 5 "
            "weighted by uncertainties (Astromer 2, sect. 3.3)",
    "patience_steps": "paper silent: chose to stop after 2000 steps without a lower "
                      "validation loss (Fig. 6 tracks the validation RMSE)",
    "min_steps": "paper silent: chose 1000 steps before early stopping may stop a run",
    "dropout": "sect. 3.2: dropout after self-attention (Astromer 2); none in Astromer 1",
    "mixed_precision": "paper silent: chose bf16 on GPUs that support it, fp32 elsewhere",
}


def _pretrain(name: str, dropout: float, loss_note: str, moment_filter: bool) -> Recipe:
    corpus = ("sect. 4.1: 'we maintain the single band input' (the band is not named: R, as "
              "in AstroCo's comparison on MACHO R-band)")
    if moment_filter:
        corpus += ("; 'light curves ... that exhibited Gaussian noise characteristics were "
                   "removed based on the criteria: |kurtosis| > 10, |skewness| > 1, and std "
                   "> 0.1' (moment_filter)")
    macho = {"band": "R", **({"moment_filter": True} if moment_filter else {})}
    return Recipe(
        name=name, stage="pretrain", paper=PAPER, optimizer="adam", betas=(0.9, 0.999),
        eps=1e-8, weight_decay=0.0, learning_rate=1e-3, schedule="constant",
        warmup_steps=MIN_WARMUP_STEPS, max_grad_norm=None, batch_size=256, max_steps=10000,
        loss="model", patience_steps=2000, min_steps=1000,
        dropout={"attention_output_dropout": dropout}, survey_options={"macho": macho},
        sources={**_PRETRAIN_SOURCES, "loss": loss_note, "survey_options": corpus})


RECIPES = (
    _pretrain("astromer-1-pretrain", 0.0, "the model's masked-reconstruction RMSE on the "
              "probed subset, eq. 4 (sect. 2.5)", moment_filter=False),
    _pretrain("astromer-2-pretrain", 0.1, "the model's masked-reconstruction RMSE weighted by "
              "the reciprocal normalised uncertainties, eq. 5 (sect. 3.3)", moment_filter=True),
    Recipe(
        name="astromer-2-finetune", stage="finetune", paper=PAPER, optimizer="adam",
        betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, lr_encoder=1e-4, lr_head=1e-3,
        schedule="constant", warmup_steps=MIN_WARMUP_STEPS, max_grad_norm=None,
        batch_size=32, max_steps=1000, loss="weighted_ce", selection="macro_f1",
        patience_steps=300, min_steps=200, balanced_batches="auto", classifier="frozen",
        sources={
            **{k: v for k, v in _PRETRAIN_SOURCES.items() if k in (
                "optimizer", "betas", "eps", "weight_decay", "schedule", "warmup_steps",
                "max_grad_norm", "dropout", "mixed_precision")},
            "lr_encoder": "paper silent: chose 1e-4 (the encoder is frozen in the paper's "
                          "protocol, sect. 5.4; this rate applies with --mode full)",
            "lr_head": "paper silent: chose 1e-3 for the MLP head (1024-512-256, sect. 5.4)",
            "batch_size": "paper silent: chose 32, several batches per epoch at 20 SPC",
            "max_steps": "paper silent: chose 1000 steps for the classifier",
            "loss": "paper silent on the classifier loss: chose class-weighted cross-entropy, "
                    "equal to cross-entropy on the balanced few-shot sets (sect. 5.1)",
            "label_smoothing": "paper silent: none",
            "selection": "sect. 5.4 reports F1 (macro); chose validation macro F1",
            "patience_steps": "paper silent: chose 300 steps without a better macro F1",
            "min_steps": "paper silent: chose 200 steps before a model is kept or a run stops",
            "balanced_batches": "sect. 5.1: balanced samples per class; chose balanced "
                                "batches when the labels are imbalanced",
            "augmentations": "paper silent: none",
            "classifier": "sect. 5.4: the encoder is frozen and an MLP trained on the "
                          "weighted per-sample embeddings",
        }),
)

#: (configuration, stage) -> recipe name; (None, stage) for a checkpoint folder
DEFAULT_RECIPE = {
    ("astromer-v1", "pretrain"): "astromer-1-pretrain",
    ("astromer-v2", "pretrain"): "astromer-2-pretrain",
    (None, "pretrain"): "astromer-2-pretrain",
    ("astromer-v1", "finetune"): "astromer-2-finetune",
    ("astromer-v2", "finetune"): "astromer-2-finetune",
    (None, "finetune"): "astromer-2-finetune",
}

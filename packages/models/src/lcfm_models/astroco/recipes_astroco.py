"""AstroCo training recipes (Tan et al., shared/papers/002_f2bec74809150cea.txt): AdamW at
7.5e-4 (S) or 7.5e-5 (L), batch 256, bf16, dropout 0.1, early stopping with patience 20
epochs (appendix A); masked-reconstruction RMSE (sect. 3.4, B.3); downstream, a frozen
encoder and a linear head trained with cross-entropy (sect. 3.4, B.3)."""

from __future__ import annotations

from lcfm.recipes import MIN_WARMUP_STEPS, Recipe

PAPER = "Tan et al., AstroCo (shared/papers/002_f2bec74809150cea.txt)"
_DROPOUT = {"hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
            "classifier_dropout": 0.1}
_SOURCES = {
    "optimizer": "appendix A: AdamW",
    "betas": "paper silent: chose AdamW's defaults (0.9, 0.999)",
    "eps": "paper silent: chose AdamW's default 1e-8",
    "weight_decay": "paper silent: chose AdamW's usual 0.01",
    "schedule": "paper silent (a single learning rate is named): chose a constant rate "
                "after warm-up",
    "warmup_steps": f"paper silent: chose lcfm's minimum warm-up ({MIN_WARMUP_STEPS} steps)",
    "max_grad_norm": "paper silent: chose clipping at 1.0 against early loss spikes",
    "batch_size": "appendix A: batch size 256",
    "max_epochs": "paper silent (early stopping ends the run): chose at most 200 epochs",
    "loss": "sect. 3.4 and B.3: RMSE between predicted and true magnitudes at the probed "
            "positions (the model's own loss)",
    "patience_epochs": "appendix A: early stopping with patience of 20 epochs",
    "min_steps": "paper silent: chose no minimum beyond the patience",
    "dropout": "appendix A: dropout 0.1",
    "mixed_precision": "appendix A: bf16 (lcfm falls back to fp32 on a CPU, where bf16 is "
                       "slower)",
}


def _pretrain(name: str, lr: float, size: str) -> Recipe:
    return Recipe(
        name=name, stage="pretrain", paper=PAPER, optimizer="adamw", weight_decay=0.01,
        learning_rate=lr, schedule="constant", warmup_steps=MIN_WARMUP_STEPS,
        max_grad_norm=1.0, batch_size=256, max_epochs=200, loss="model", patience_epochs=20,
        min_steps=0, dropout=_DROPOUT, mixed_precision="bf16",
        survey_options={"macho": {"band": "R"}},
        sources={**_SOURCES, "learning_rate": f"appendix A: AstroCo-{size} learning rate "
                                              f"{lr:g}",
                 "survey_options": "sect. 4 / Table 1: pretrained and scored on MACHO "
                                   "R-band"})


RECIPES = (
    _pretrain("astroco-s", 7.5e-4, "S"),
    _pretrain("astroco-l", 7.5e-5, "L"),
    Recipe(
        name="astroco-finetune", stage="finetune", paper=PAPER, optimizer="adamw",
        weight_decay=0.01, lr_encoder=7.5e-5, lr_head=1e-3, schedule="constant",
        warmup_steps=MIN_WARMUP_STEPS, max_grad_norm=1.0, batch_size=256, max_epochs=100,
        loss="ce", selection="macro_f1", patience_epochs=20, min_steps=200,
        balanced_batches="auto", dropout=_DROPOUT, mixed_precision="bf16",
        classifier="frozen",
        sources={
            **{k: v for k, v in _SOURCES.items() if k not in ("loss", "max_epochs")},
            "lr_encoder": "paper silent (the encoder is frozen, sect. 3.4): chose AstroCo-L's "
                          "7.5e-5 for --mode full",
            "lr_head": "paper silent: chose 1e-3 for the linear head",
            "max_epochs": "paper silent: chose at most 100 epochs",
            "loss": "sect. 3.4 and B.3: cross-entropy",
            "label_smoothing": "paper silent: none",
            "selection": "paper silent: chose validation macro F1, the metric reported",
            "patience_epochs": "appendix A: patience of 20 epochs (stated for training in "
                               "general)",
            "min_steps": "lcfm choice: 200 steps before a model is kept or a run stops",
            "balanced_batches": "paper silent: chose balanced batches on imbalanced labels",
            "augmentations": "paper silent: none",
            "classifier": "sect. 3.4, B.3: frozen encoder, linear head",
        }),
)

DEFAULT_RECIPE = {
    ("astroco-s", "pretrain"): "astroco-s",
    ("astroco-l", "pretrain"): "astroco-l",
    (None, "pretrain"): "astroco-s",
    ("astroco-s", "finetune"): "astroco-finetune",
    ("astroco-l", "finetune"): "astroco-finetune",
    (None, "finetune"): "astroco-finetune",
}

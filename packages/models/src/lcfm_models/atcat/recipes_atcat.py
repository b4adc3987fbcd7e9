"""ATCAT training recipes (Tung, shared/papers/003_05ad419fc2efc3e7.txt, sect. 2.4): NAdam at
2e-4 with beta1 = 0 and beta2 = 0.999, linear warm-up over 1000 steps, a constant rate, then
exponential decay after step 20000 with a half-life of 6000 steps; gradients clipped to 0.1
in pretraining and not at all in fine-tuning; balanced batches for labeled training; the
checkpoint selected on the validation class-balanced F1 (sect. 2.3.1)."""

from __future__ import annotations

from lcfm.recipes import Recipe

PAPER = "Tung, ATCAT (shared/papers/003_05ad419fc2efc3e7.txt)"
_OPT = {
    "optimizer": "sect. 2.4: NAdam ('similar to RMSProp', after ATAT)",
    "betas": "sect. 2.4: beta1 = 0, beta2 = 0.999",
    "eps": "paper silent: chose NAdam's default 1e-8",
    "weight_decay": "sect. 2.4: no weight decay with the full training set (1e-5 'for "
                    "setups with less data': recipe atcat-finetune-small)",
    "schedule": "sect. 2.4: linear warm-up, steady rate, exponential decay after 20000 "
                "steps with a half-life of 6000 steps",
    "warmup_steps": "sect. 2.4: linear warm-up for the first 1000 steps",
    "decay_start": "sect. 2.4: exponential decay after 20000 steps",
    "half_life": "sect. 2.4: half-life of 6000 steps",
    "batch_size": "sect. 3.6.1: batch size 256 for training",
    "mixed_precision": "sect. 3.6: bfloat16 after input encoding (lcfm: bf16 on GPUs that "
                       "support it, fp32 on a CPU)",
}
_COMMON = dict(paper=PAPER, optimizer="nadam", betas=(0.0, 0.999), eps=1e-8,
               schedule="constant_then_exponential", warmup_steps=1000, decay_start=20000,
               half_life=6000, batch_size=256, mixed_precision="bf16")
_FINETUNE_SOURCES = {
    **_OPT,
    "lr_encoder": "sect. 2.4: 2e-4 for every parameter",
    "lr_head": "sect. 2.4: 2e-4 for every parameter",
    "max_grad_norm": "sect. 2.4: 'we do not have any gradient clipping for fine-tuning / "
                     "labeled training'",
    "max_steps": "sect. 2.4: 40000 steps on the full training set (20000 when fine-tuning "
                 "a pretrained model)",
    "eval_every": "sect. 2.4: evaluating every 4000 steps",
    "loss": "sect. 2.3.2, 2.6, 3.5.4: the model's own objective (log-loss + soft F1, "
            "early-detection loss with the last-point loss at 1/3, ATCAT plugin)",
    "fallback_loss": "sect. 3.5.4 (Table 7): log-loss + soft F1, the default model's loss, "
                     "when the plugin gives no objective",
    "label_smoothing": "sect. 2.7: label smoothing (0.1) is a calibration variant, not the "
                       "default model",
    "selection": "sect. 2.3.1, 2.4: class-balanced F1 on the validation set selects the "
                 "checkpoint",
    "patience_steps": "sect. 2.4: no early stopping (the best evaluation is kept)",
    "min_steps": "sect. 2.4: checkpoints from step 4000 on (the first evaluation)",
    "balanced_batches": "sect. 2.4: ATAT's balanced batch sampling for labeled training",
    "augmentations": "sect. 2.1.2: subsampling, flux scaling, time shift, redshifting and "
                     "random noise, stacked",
    "dropout": "sect. 2.4: no dropout with full access to the training data",
    "classifier": "sect. 2.4: the whole model is trained",
}

RECIPES = (
    Recipe(
        name="atcat-pretrain", stage="pretrain", learning_rate=2e-4, weight_decay=0.0,
        max_grad_norm=0.1, max_steps=20000, loss="model", min_steps=0,
        sources={**_OPT,
                 "learning_rate": "sect. 2.4: 2e-4",
                 "max_grad_norm": "sect. 2.4: 'During pretraining, we clip gradients to a L2 "
                                  "norm of 0.1'",
                 "max_steps": "sect. 2.4: 'we pretrained models for 20,000 steps'",
                 "loss": "sect. 2.5: the model's next-value mixture-of-Gaussians loss",
                 "min_steps": "sect. 2.4: no early stopping in pretraining",
                 "dropout": "sect. 2.4: no dropout with full access to the training data"},
        **_COMMON),
    Recipe(
        name="atcat-finetune", stage="finetune", lr_encoder=2e-4, lr_head=2e-4,
        weight_decay=0.0, max_grad_norm=None, max_steps=40000, eval_every=4000, loss="model",
        fallback_loss={"ce": 1.0, "soft_f1": 1.0}, selection="class_balanced_f1",
        min_steps=4000, balanced_batches=True,
        augmentations=("subsample", "scale", "shift", "redshift", "noise"),
        sources=_FINETUNE_SOURCES, **_COMMON),
    Recipe(
        name="atcat-finetune-small", stage="finetune", lr_encoder=2e-4, lr_head=2e-4,
        weight_decay=1e-5, max_grad_norm=None, max_steps=20000, eval_every=4000, loss="model",
        fallback_loss={"ce": 1.0, "soft_f1": 1.0}, selection="class_balanced_f1",
        min_steps=4000, balanced_batches=True,
        augmentations=("subsample", "scale", "shift", "redshift", "noise"),
        dropout={"hidden_dropout": 0.15, "attention_dropout": 0.15, "input_dropout": 0.04,
                 "classifier_dropout": 0.04},
        sources={**_FINETUNE_SOURCES,
                 "weight_decay": "sect. 2.4: 'For setups with less data, we enabled the "
                                 "nadam weight decay term with weight 1e-5'",
                 "max_steps": "sect. 2.4: fine-tuned for 20,000 steps after pretraining",
                 "dropout": "sect. 2.4: 15% dropout for transformer layers and 4% for input "
                            "and classifiers in the smaller-labeled-set models"},
        **_COMMON),
)

DEFAULT_RECIPE = {
    ("atcat", "pretrain"): "atcat-pretrain",
    (None, "pretrain"): "atcat-pretrain",
    ("atcat", "finetune"): "atcat-finetune",
    (None, "finetune"): "atcat-finetune",
}

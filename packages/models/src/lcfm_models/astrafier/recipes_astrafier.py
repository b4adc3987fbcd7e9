"""The ASTRAFier training recipe (Gregory et al., shared/papers/000_0d28d1f6ab765e34.txt,
sect. 5): batch 128; AdamW at 1e-4 for the ASTRAFier blocks and 1e-3 for the MLP head,
weight decay 1e-5, betas (0.9, 0.95), eps 1e-8; dropout 0.2 throughout; class-weighted
cross-entropy w_c = N_total / N_c; the model with the best validation accuracy is kept.
ASTRAFier has no self-supervised stage."""

from __future__ import annotations

from lcfm.recipes import MIN_WARMUP_STEPS, Recipe

PAPER = "Gregory et al., ASTRAFier (shared/papers/000_0d28d1f6ab765e34.txt)"

RECIPES = (
    Recipe(
        name="astrafier", stage="finetune", paper=PAPER, optimizer="adamw",
        betas=(0.9, 0.95), eps=1e-8, weight_decay=1e-5, lr_encoder=1e-4, lr_head=1e-3,
        schedule="constant", warmup_steps=MIN_WARMUP_STEPS, max_grad_norm=None,
        batch_size=128, max_epochs=100, loss="weighted_ce", selection="accuracy",
        patience_epochs=20, min_steps=200, balanced_batches=False,
        dropout={"dropout": 0.2}, classifier="full",
        sources={
            "optimizer": "sect. 5: AdamW, for its decoupled weight decay",
            "betas": "sect. 5: beta1 = 0.9, beta2 = 0.95",
            "eps": "sect. 5: 1e-8",
            "weight_decay": "sect. 5: 1e-5",
            "lr_encoder": "sect. 5: 1e-4 for the ASTRAFier blocks",
            "lr_head": "sect. 5: 1e-3 for the MLP classification head",
            "schedule": "paper silent (one rate per group is named): chose a constant rate "
                        "after warm-up",
            "warmup_steps": f"paper silent: chose lcfm's minimum warm-up "
                            f"({MIN_WARMUP_STEPS} steps)",
            "max_grad_norm": "paper silent: no clipping mentioned, none applied",
            "batch_size": "sect. 5: batch size of 128 light curves",
            "max_epochs": "paper silent (epochs of ~1.5 min are mentioned, sect. 5): chose "
                          "at most 100 epochs",
            "loss": "sect. 5: class-weighted cross-entropy, w_c = N_total / N_c",
            "label_smoothing": "paper silent: none",
            "selection": "sect. 5: 'We select the best-performing model based on "
                         "validation accuracy'",
            "patience_epochs": "paper silent: chose to stop after 20 epochs without a better "
                               "validation accuracy",
            "min_steps": "lcfm choice: 200 steps before a model is kept or a run stops",
            "balanced_batches": "sect. 5: class weights in the loss balance the classes, "
                                "batches are drawn as they come",
            "augmentations": "paper silent: none",
            "dropout": "sect. 5: dropout probability 0.2 throughout the model",
            "mixed_precision": "paper silent: chose bf16 on GPUs that support it, fp32 "
                               "elsewhere",
            "classifier": "sect. 5: the whole model is trained on labels",
        }),
)

DEFAULT_RECIPE = {("astrafier", "finetune"): "astrafier", (None, "finetune"): "astrafier"}

"""The training engine: Accelerate loops for pretraining and fine-tuning."""

from lcfm.engine.pretrain import PretrainArgs, pretrain

__all__ = ["PretrainArgs", "pretrain"]

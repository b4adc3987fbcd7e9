"""The model side of `lcfm bench`: forward and forward+backward throughput in light curves
per second, FLOPs per light curve, and the fraction of the machine's fp32 matmul peak
measured in the same process (issue 10 item 9).

FLOPs come from `torch.utils.flop_counter.FlopCounterMode`, which counts matrix products,
convolutions and attention kernels; element-wise work and fused RNN kernels (ASTRAFier's
LSTM on CPU) are not counted, so the fraction of peak of a recurrent model is a lower bound.
"""

from __future__ import annotations

import time

import torch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak_gflops(device: torch.device, size: int | None = None,
                       min_seconds: float = 0.3) -> float:
    """Best fp32 GFLOP/s of a square matmul (2 n^3 flops) on `device` with the current
    thread count: the reference for "fraction of peak"."""
    size = size or (8192 if device.type == "cuda" else 1024)
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    torch.matmul(a, b)  # warm-up (allocator, kernel selection)
    _sync(device)
    best, spent = 0.0, 0.0
    while spent < min_seconds:
        start = time.perf_counter()
        torch.matmul(a, b)
        _sync(device)
        seconds = time.perf_counter() - start
        spent += seconds
        best = max(best, 2 * size ** 3 / seconds / 1e9)
    return best


def _loss(output) -> torch.Tensor:
    loss = getattr(output, "loss", None)
    if loss is None:  # no labels (a classifier without a pretraining head): any scalar
        loss = output.logits.float().pow(2).mean()
    return loss


def _flops(fn) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return int(counter.get_total_flops())


def _rate(fn, n_items: int, min_seconds: float) -> float:
    """Light curves per second of `fn` (which handles `n_items`), after one warm-up call,
    repeated until `min_seconds` have passed."""
    fn()
    start, calls = time.perf_counter(), 0
    while True:
        fn()
        calls += 1
        seconds = time.perf_counter() - start
        if seconds >= min_seconds:
            return n_items * calls / seconds


def model_throughput(plugin, config, batches: list[dict], device: torch.device,
                     min_seconds: float = 1.0) -> dict:
    """Forward (eval, no grad) and training step (forward + backward + AdamW) rates of
    `plugin`'s pretraining model (its classifier where it has none) on collated `batches`."""
    cls = plugin.pretraining_class or plugin.classification_class
    model = cls(config).to(device)
    batches = [{k: v.to(device) if torch.is_tensor(v) else v for k, v in b.items()}
               for b in batches]
    n = sum(len(b["attention_mask"]) for b in batches)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def forward():
        with torch.no_grad():
            for b in batches:
                model(**{k: v for k, v in b.items() if k != "labels"})
        _sync(device)

    def train():
        for b in batches:
            _loss(model(**b)).backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        _sync(device)

    def forward_backward():
        for b in batches:
            _loss(model(**b)).backward()
        model.zero_grad(set_to_none=True)

    model.eval()
    forward_flops = _flops(forward) / n
    forward_rate = _rate(forward, n, min_seconds)
    model.train()
    train_flops = _flops(forward_backward) / n
    train_rate = _rate(train, n, min_seconds)
    return {"light_curves": n,
            "forward_per_second": round(forward_rate, 1),
            "train_per_second": round(train_rate, 1),
            "flops_per_light_curve_forward": round(forward_flops),
            "flops_per_light_curve_train": round(train_flops),
            "forward_gflops": round(forward_flops * forward_rate / 1e9, 3),
            "train_gflops": round(train_flops * train_rate / 1e9, 3)}


__all__ = ["matmul_peak_gflops", "model_throughput"]

"""Fine-tuning with the sparsity mask kept (optional: needs torch, the `train` extra).

`finetune(net, masks, x, y)` trains a sequential float Network (host.nn) in PyTorch and returns
it with new weights; after every optimiser step the pruned weights are set back to 0, so the
result still follows the balanced pattern of `masks` (from host.quant.prune_network) and packs with
`sense pack --pruned`.

With ``act_penalty`` > 0 the loss also has a group lasso on the activations that conv layers
read: the sum, over images, blocks of ``cols`` consecutive pixels and groups of ``group``
consecutive channels, of the group's L2 norm, times ``act_penalty`` over the batch. That is the
unit the IFM decoder skips (SPEC section 4: a channel group that is zero for every pixel of a
tile), so the penalty drives whole skippable units to zero (issue 16's co-design).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from host.nn import Network

__all__ = ["finetune", "fit", "to_torch", "from_torch", "group_lasso"]


def to_torch(net: Network):
    """A torch module computing `net` (conv / fc layers with their ReLU and max-pool)."""
    import torch
    from torch import nn

    class Sequential(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList()
            for layer in net.layers:
                w = torch.tensor(layer.weight, dtype=torch.float32)
                if layer.kind == "fc":
                    mod = nn.Linear(w.shape[1], w.shape[0])
                else:
                    mod = nn.Conv2d(w.shape[1], w.shape[0], tuple(w.shape[2:]),
                                    stride=layer.stride, padding=layer.pad)
                with torch.no_grad():
                    mod.weight.copy_(w)
                    mod.bias.copy_(torch.tensor(layer.bias, dtype=torch.float32))
                self.layers.append(mod)

        def forward(self, x, acts=None):
            """`acts`, a list, receives the inputs of every conv layer but the first."""
            for i, (layer, mod) in enumerate(zip(net.layers, self.layers)):
                if acts is not None and i > 0 and layer.kind == "conv":
                    acts.append(x)
                x = mod(x.flatten(1) if layer.kind == "fc" else x)
                if layer.relu:
                    x = torch.relu(x)
                if layer.pool:
                    k, s, p = layer.pool
                    x = torch.nn.functional.max_pool2d(x, k, s, p)
            return x.flatten(1)

    return Sequential()


def from_torch(module, net: Network) -> Network:
    """`net` with the weights of `module` (made by `to_torch`)."""
    layers = [replace(layer, weight=mod.weight.detach().double().numpy().copy(),
                      bias=mod.bias.detach().double().numpy().copy())
              for layer, mod in zip(net.layers, module.layers)]
    return net.with_layers(layers)


def group_lasso(a, group: int, cols: int):
    """Sum of the L2 norms of the (group channels x cols pixels) units of activations `a`
    (N, C, H, W), a torch tensor; channels and pixels padded with zeros."""
    import torch

    n, c, h, w = a.shape
    cp, pixels = -(-c // group) * group, h * w
    pp = -(-pixels // cols) * cols
    flat = torch.nn.functional.pad(a.reshape(n, c, pixels), (0, pp - pixels, 0, cp - c))
    units = flat.reshape(n, cp // group, group, pp // cols, cols)
    return torch.sqrt((units ** 2).sum(dim=(2, 4)) + 1e-12).sum()


def fit(module, x: np.ndarray, y: np.ndarray, *, epochs: int, lr: float, batch: int = 64,
        seed: int | None = None, loss_fn=None, after_step=None) -> None:
    """Train a torch `module` on (x, y) with Adam: `epochs` passes in shuffled batches, loss
    `loss_fn(x_batch, y_batch)` (default: cross-entropy of `module(x_batch)`), `after_step()`
    after every optimiser step. `seed`: reseed torch first (None: keep its state)."""
    import torch
    from torch import nn

    if seed is not None:
        torch.manual_seed(seed)
    if loss_fn is None:
        def loss_fn(xb, yb):
            return nn.functional.cross_entropy(module(xb), yb)
    opt = torch.optim.Adam(module.parameters(), lr=lr)
    xt, yt = torch.tensor(x, dtype=torch.float32), torch.tensor(y)
    for _ in range(epochs):
        order = torch.randperm(len(xt))
        for i in range(0, len(xt), batch):
            idx = order[i:i + batch]
            loss = loss_fn(xt[idx], yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            if after_step is not None:
                after_step()


def finetune(net: Network, masks, x: np.ndarray, y: np.ndarray, *, epochs: int = 30,
             lr: float = 5e-4, batch: int = 64, seed: int = 0, act_penalty: float = 0.0,
             group: int = 4, cols: int = 4) -> Network:
    """Train `net` on (x, y) with cross-entropy, keeping every weight outside `masks` at 0
    (`masks` None: no mask). `masks` are per layer, shaped like the weights or like host.quant's
    (K, C, R, S) view. `act_penalty`, `group`, `cols`: the activation group lasso (module
    docstring)."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    module = to_torch(net)
    masks = masks if masks is not None else [None] * len(module.layers)
    tmasks = [torch.tensor(np.asarray(m).reshape(tuple(mod.weight.shape)), dtype=torch.float32)
              if m is not None else None for m, mod in zip(masks, module.layers)]
    with torch.no_grad():
        for mod, m in zip(module.layers, tmasks):
            if m is not None:
                mod.weight.mul_(m)
    def loss_of(xb, yb):
        acts = [] if act_penalty else None
        loss = nn.functional.cross_entropy(module(xb, acts), yb)
        if act_penalty:
            loss = loss + act_penalty * sum(group_lasso(a, group, cols) for a in acts) / len(xb)
        return loss

    def keep_mask():
        with torch.no_grad():
            for mod, m in zip(module.layers, tmasks):
                if m is not None:
                    mod.weight.mul_(m)

    fit(module, x, y, epochs=epochs, lr=lr, batch=batch, loss_fn=loss_of, after_step=keep_mask)
    return from_torch(module, net)

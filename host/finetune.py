"""Fine-tuning with the sparsity mask kept (optional: needs torch, the `train` extra).

`finetune(net, masks, x, y)` trains a sequential float Network (host.nn) in PyTorch and returns
it with new weights; after every optimiser step the pruned weights are set back to 0, so the
result still follows the balanced pattern of `masks` (from host.quant.prune_network) and packs with
`sense pack --pruned`.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from host.nn import Network

__all__ = ["finetune", "to_torch", "from_torch"]


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

        def forward(self, x):
            for layer, mod in zip(net.layers, self.layers):
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


def finetune(net: Network, masks, x: np.ndarray, y: np.ndarray, *, epochs: int = 30,
             lr: float = 5e-4, batch: int = 64, seed: int = 0) -> Network:
    """Train `net` on (x, y) with cross-entropy, keeping every weight outside `masks` at 0.
    `masks` are per layer, shaped like the weights or like host.quant's (K, C, R, S) view."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    module = to_torch(net)
    tmasks = [torch.tensor(np.asarray(m).reshape(tuple(mod.weight.shape)), dtype=torch.float32)
              if m is not None else None for m, mod in zip(masks, module.layers)]
    with torch.no_grad():
        for mod, m in zip(module.layers, tmasks):
            if m is not None:
                mod.weight.mul_(m)
    opt = torch.optim.Adam(module.parameters(), lr=lr)
    xt, yt = torch.tensor(x, dtype=torch.float32), torch.tensor(y)
    for _ in range(epochs):
        order = torch.randperm(len(xt))
        for i in range(0, len(xt), batch):
            idx = order[i:i + batch]
            loss = nn.functional.cross_entropy(module(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():
                for mod, m in zip(module.layers, tmasks):
                    if m is not None:
                        mod.weight.mul_(m)
    return from_torch(module, net)

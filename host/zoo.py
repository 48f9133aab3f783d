"""The benchmark networks (SPEC section 8) built in code: AlexNet, VGG-16, VGG-19, ResNet-50 and
GoogLeNet (Inception-v1), with their published layer shapes, as `host.nn.Network` graphs.

Nothing is downloaded: the structures are written here from the papers (torchvision's variants
where the papers leave choices: AlexNet's single-tower 64-192-384-256-256 layout, ResNet-50 v1.5
with the stride on the 3x3 convolution, GoogLeNet without its auxiliary classifiers and LRN).
Weights are random (He-scaled, seeded) or, for `weights="none"`, zero-cost placeholders (a
read-only broadcast array: shapes only, for the performance estimate). `width` scales every
channel count and `size` the input, so that the tests can run the same structures small.

`sense estimate resnet50` and friends take these names; `save_onnx` writes them as ONNX graphs
that the importer reads back.
"""

from __future__ import annotations

import numpy as np

from host import golden
from host.nn import Layer, Network, check_shapes

__all__ = ["NETWORKS", "build"]


class _Builder:
    def __init__(self, input_shape, weights, width, seed):
        self.input_shape = tuple(input_shape)
        self.layers: list[Layer] = []
        self.weights = weights
        self.width = width
        self.rng = np.random.default_rng(seed)

    def ch(self, c: int) -> int:
        return max(1, int(round(c * self.width)))

    def shape(self, t: int) -> tuple:
        return self.input_shape if t < 0 else Network(self.input_shape, self.layers).out_shapes()[t]

    def _tensor(self, shape):
        if self.weights == "none":
            return np.broadcast_to(np.float32(0), shape)
        fan_in = int(np.prod(shape[1:]))
        return self.rng.standard_normal(shape, np.float32) * np.float32(np.sqrt(2 / fan_in))

    def add(self, layer: Layer, inputs) -> int:
        layer.inputs = list(inputs)
        self.layers.append(layer)
        return len(self.layers) - 1

    def conv(self, t, k, r, stride=1, pad=None, relu=True, pool=None, name=None, scale=True):
        c = self.shape(t)[0]
        k = self.ch(k) if scale else k
        pad = r // 2 if pad is None else pad
        bias = (np.zeros(k) if self.weights == "none"
                else self.rng.normal(0, 0.05, k))
        return self.add(Layer("conv", name or f"conv{len(self.layers)}", self._tensor((k, c, r, r)),
                              bias, stride=stride, pad=pad, relu=relu, pool=pool), [t])

    def fc(self, t, k, relu=True, name=None):
        features = int(np.prod(self.shape(t)))
        bias = np.zeros(k) if self.weights == "none" else self.rng.normal(0, 0.05, k)
        return self.add(Layer("fc", name or f"fc{len(self.layers)}", self._tensor((k, features)),
                              bias, relu=relu), [t])

    def pool(self, t, kind, k, s, p=0, ceil=False, name=None):
        return self.add(Layer(kind, name or f"{kind}{len(self.layers)}",
                              pool=golden.Window.of(k, s, p, ceil_mode=ceil)), [t])

    def network(self, name) -> Network:
        net = Network(self.input_shape, self.layers, ["softmax"], name=name)
        check_shapes(net)
        return net


def alexnet(b: _Builder) -> int:
    t = b.conv(-1, 64, 11, stride=4, pad=2, pool=(3, 2, 0))
    t = b.conv(t, 192, 5, pool=(3, 2, 0))
    t = b.conv(t, 384, 3)
    t = b.conv(t, 256, 3)
    t = b.conv(t, 256, 3, pool=(3, 2, 0))
    return _classifier(b, t, [4096, 4096])


def _classifier(b, t, hidden, classes=1000):
    for i, k in enumerate(hidden):
        t = b.fc(t, b.ch(k), name=f"fc{i + 6}")
    return b.fc(t, classes, relu=False, name="classifier")


def vgg(b: _Builder, depth: int) -> int:
    per_stage = {16: [2, 2, 3, 3, 3], 19: [2, 2, 4, 4, 4]}[depth]
    t = -1
    for stage, (width, n) in enumerate(zip([64, 128, 256, 512, 512], per_stage)):
        for i in range(n):
            last = i == n - 1
            t = b.conv(t, width, 3, pool=(2, 2, 0) if last else None,
                       name=f"conv{stage + 1}_{i + 1}")
    return _classifier(b, t, [4096, 4096])


def _bottleneck(b: _Builder, t: int, width: int, stride: int, name: str, project: bool) -> int:
    """ResNet's bottleneck block: 1x1 - 3x3 (stride) - 1x1 (4 x width), plus the input or its
    1x1 projection, added, ReLU."""
    y = b.conv(t, width, 1, name=f"{name}.conv1")
    y = b.conv(y, width, 3, stride=stride, name=f"{name}.conv2")
    y = b.conv(y, 4 * width, 1, relu=False, name=f"{name}.conv3")
    short = t
    if project:
        short = b.conv(t, 4 * width, 1, stride=stride, relu=False, name=f"{name}.downsample")
    return b.add(Layer("add", f"{name}.add", relu=True), [y, short])


def resnet50(b: _Builder) -> int:
    t = b.conv(-1, 64, 7, stride=2, pad=3, pool=(3, 2, 1), name="conv1")
    for stage, (width, blocks) in enumerate([(64, 3), (128, 4), (256, 6), (512, 3)]):
        for i in range(blocks):
            stride = 2 if (i == 0 and stage > 0) else 1
            t = _bottleneck(b, t, width, stride, f"layer{stage + 1}.{i}", project=i == 0)
    t = b.add(Layer("gap", "avgpool"), [t])
    return b.fc(t, 1000, relu=False, name="fc")


#: GoogLeNet's inception modules: (1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool projection).
INCEPTION = {
    "3a": (64, 96, 128, 16, 32, 32), "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64), "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64), "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128), "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}


def googlenet(b: _Builder) -> int:
    t = b.conv(-1, 64, 7, stride=2, pad=3, name="conv1")
    t = b.pool(t, "maxpool", 3, 2, 0, ceil=True, name="pool1")
    t = b.conv(t, 64, 1, name="conv2_reduce")
    t = b.conv(t, 192, 3, name="conv2")
    t = b.pool(t, "maxpool", 3, 2, 0, ceil=True, name="pool2")
    for name, widths in INCEPTION.items():
        t = _inception(b, t, name, widths)
        if name in ("3b", "4e"):
            t = b.pool(t, "maxpool", 3, 2, 0, ceil=True, name=f"pool{name[0]}")
    t = b.add(Layer("gap", "avgpool"), [t])
    return b.fc(t, 1000, relu=False, name="fc")


def _inception(b: _Builder, t: int, name: str, widths) -> int:
    """An inception module: 1x1; 1x1 - 3x3; 1x1 - 5x5; 3x3 max-pool - 1x1; concatenated. The
    four layers that read the module's input come first, one after the other: each but the
    first finds it in the IFM store (INPUT_KEPT) instead of loading it again."""
    c1, r3, c3, r5, c5, pp = widths
    one = b.conv(t, c1, 1, name=f"{name}.1x1")
    reduce3 = b.conv(t, r3, 1, name=f"{name}.3x3_reduce")
    reduce5 = b.conv(t, r5, 1, name=f"{name}.5x5_reduce")
    pool = b.pool(t, "maxpool", 3, 1, 1, name=f"{name}.pool")
    branches = [one, b.conv(reduce3, c3, 3, name=f"{name}.3x3"),
                b.conv(reduce5, c5, 5, name=f"{name}.5x5"),
                b.conv(pool, pp, 1, name=f"{name}.pool_proj")]
    return b.add(Layer("concat", f"{name}.concat"), branches)


def mini(b: _Builder) -> int:
    """The four networks' structures at test size (32x32 input): a VGG-style stack of 3x3
    convolutions (32x32x32 is twice `small`'s IFM store, so the stride-2 layer runs in bands; a
    fused 2x2 max-pool), a stride-1 max-pool, a bottleneck stage (projection shortcut, then an
    identity block), an inception module, a ceil_mode max-pool (GoogLeNet), global average
    pooling and FC."""
    t = b.conv(-1, 16, 3, name="conv1_1")
    t = b.conv(t, 32, 3, name="conv1_2")
    t = b.conv(t, 32, 3, stride=2, name="conv1_3")                        # 16x16, bands
    t = b.conv(t, 32, 3, pool=(2, 2, 0), name="conv2_1")                  # 8x8
    t = b.pool(t, "maxpool", 3, 1, 1, name="stem_pool")
    t = _bottleneck(b, t, 16, 1, "layer1.0", project=True)                # 8x8x64
    t = _bottleneck(b, t, 16, 1, "layer1.1", project=False)
    t = _inception(b, t, "3a", (16, 16, 24, 8, 8, 8))                     # 8x8x56
    t = b.pool(t, "maxpool", 3, 2, 0, ceil=True, name="pool3")            # 4x4
    t = b.add(Layer("gap", "avgpool"), [t])
    return b.fc(t, 10, relu=False, name="fc")


#: name: (builder, input size, description)
NETWORKS = {
    "alexnet": (alexnet, 224, "AlexNet (torchvision's single-tower layout, no LRN)"),
    "vgg16": (lambda b: vgg(b, 16), 224, "VGG-16 (configuration D)"),
    "vgg19": (lambda b: vgg(b, 19), 224, "VGG-19 (configuration E)"),
    "resnet50": (resnet50, 224, "ResNet-50 v1.5 (stride on the 3x3 convolution)"),
    "googlenet": (googlenet, 224, "GoogLeNet / Inception-v1 (no auxiliary heads, no LRN)"),
    "mini": (mini, 32, "the four networks' structures at test size (VGG stack, ResNet "
                       "bottlenecks, an inception module, GAP, FC)"),
}


def build(name: str, *, weights: str = "random", width: float = 1.0, size: int | None = None,
          seed: int = 0) -> Network:
    """A benchmark network by name (NETWORKS); weights "random" or "none" (shapes only)."""
    if name not in NETWORKS:
        raise ValueError(f"unknown network {name!r}; known: {', '.join(NETWORKS)}")
    if weights not in ("random", "none"):
        raise ValueError(f"weights must be 'random' or 'none', not {weights!r}")
    fn, default_size, _ = NETWORKS[name]
    size = size or default_size
    b = _Builder((3, size, size), weights, width, seed)
    fn(b)
    return b.network(name)

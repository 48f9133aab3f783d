"""The architecture study of docs/architecture.md, made with the whole-network estimate.

    .venv/bin/python scripts/study.py            # writes docs/results/study.json, prints tables

For AlexNet, VGG-16, ResNet-50 and GoogLeNet (host.zoo) it estimates (host.plan, batch 1 and
batch 8, 200 MHz unless stated) every option below and prints Markdown tables:

1. IFM storage: today's copies (every column its own copy: ifm_kib / cols distinct) against
   shared storage of distinct data, with and without the on-chip hand-over and fused adds;
   and with the next layer's first band prefetched during the current layer;
2. DRAM: 1 or 2 AXI ports of 128 or 256 bits;
3. IFM memory size (256 / 512 / 1024 KiB distinct) and weight buffer (512 / 1024 KiB);
4. grid shape (32x32, 32x64, 64x32, 48x48) at the chosen memory and DRAM;
5. what passes the Xilinx DPU's ResNet-50 (about 180 frames/s): grids, clocks and bandwidth;
6. IFM zero skipping: the fraction of channel groups that must be zero for VGG-16 to reach the
   paper's 34 images/s.
"""

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from host import zoo  # noqa: E402
from host.plan import Target, plan_network  # noqa: E402
from host.report import DPU, PAPER  # noqa: E402
from hw.config import SenseConfig  # noqa: E402
from hw.files import atomic_write  # noqa: E402

NETS = ["alexnet", "vgg16", "resnet50", "googlenet"]
# The study's base is the zcu102 preset it was made for (issue 14: 32x32, 512 KiB of IFM and of
# weights), so these tables stay what docs/architecture.md quotes; the preset since issue 15 is
# 64x32 with 256 KiB / 1 MiB, whose figures `sense estimate` gives (README).
BASE = SenseConfig.preset("zcu102").replace(rows=32, cols=32, ifm_kib=512, weight_kib=512)


def run(nets, config, batch=1, ifm_skip=0.0, **target):
    out = {}
    for name, net in nets.items():
        plan = plan_network(net, Target(config, **target), batch=batch, ifm_skip=ifm_skip)
        out[name] = {"images_per_s": plan["total"]["images_per_s"],
                     "conv_images_per_s": plan["conv"]["images_per_s"],
                     "dram_mb_per_image": plan["total"]["dram_mb_per_image"],
                     "conv_pe_util": plan["conv"]["pe_util_mac_weighted"]}
    return out


def table(title, rows, nets):
    print(f"\n### {title}\n")
    head = " | ".join(f"{n} img/s (conv) MB" for n in nets)
    print(f"| option | {head} |")
    print("|---|" + "---|" * len(nets))
    for label, res in rows:
        cells = " | ".join(f"{res[n]['images_per_s']:.1f} ({res[n]['conv_images_per_s']:.1f}) "
                           f"{res[n]['dram_mb_per_image']:.1f}" for n in nets)
        print(f"| {label} | {cells} |")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", default=str(ROOT / "docs" / "results" / "study.json"))
    args = p.parse_args(argv)
    nets = {n: zoo.build(n, weights="none") for n in NETS}
    study = {"base": BASE.to_dict(), "sections": {}}

    def section(key, title, options):
        rows = [(label, run(nets, cfg, **kw)) for label, cfg, kw in options]
        study["sections"][key] = [{"option": label, "results": res} for label, res in rows]
        table(title, rows, NETS)

    section("ifm", "IFM storage (32x32, 1 port of 128 bits, batch 1)", [
        ("copies (today): 16 KiB distinct", BASE, dict(ifm="copies", ports=1, fuse_add=False,
                                                       resident=False, prefetch=False)),
        ("shared 512 KiB, every activation through DRAM", BASE,
         dict(ports=1, fuse_add=False, resident=False, prefetch=False)),
        ("shared + next layer's first band prefetched", BASE,
         dict(ports=1, fuse_add=False, resident=False)),
        ("shared + prefetch + fused adds + on-chip hand-over", BASE, dict(ports=1)),
    ])
    section("dram", "DRAM bandwidth (32x32, shared 512 KiB, batch 1)", [
        (f"{ports} x {bits} bits ({ports * bits / 8 * 0.2:.1f} GB/s)", BASE,
         dict(ports=ports, port_bits=bits))
        for ports, bits in ((1, 128), (2, 128), (1, 256), (2, 256), (4, 128))])
    section("buffers", "Buffer sizes (32x32, 2 x 128 bits, batch 1)", [
        (f"IFM {ifm} KiB, weights {w} KiB", BASE.replace(ifm_kib=ifm, weight_kib=w),
         dict(ports=2)) for ifm, w in ((256, 512), (512, 512), (1024, 512), (512, 1024))])
    section("batch", "Batch (32x32, shared 512 KiB, 2 x 128 bits)", [
        (f"batch {b}", BASE, dict(ports=2, batch=b)) for b in (1, 4, 8, 16)])
    section("grid", "Grid shape (shared 512 KiB, 2 x 128 bits, batch 1)", [
        (f"{r}x{c} ({r * c} PEs)", BASE.replace(rows=r, cols=c), dict(ports=2))
        for r, c in ((32, 32), (32, 64), (64, 32), (48, 48))])
    section("dpu", "Passing the DPU's ResNet-50 (shared IFM, batch 1)", [
        (f"{r}x{c} at {mhz} MHz, {ports} x 128 bits", BASE.replace(rows=r, cols=c,
                                                                   clock_mhz=mhz),
         dict(ports=ports))
        for r, c, mhz, ports in ((64, 32, 200, 2), (64, 32, 300, 4), (64, 64, 200, 4),
                                 (64, 64, 300, 4), (64, 64, 300, 8))])
    skips = [0.0, 0.25, 0.5, 0.75]
    section("skip", "IFM zero skipping (32x32, shared 512 KiB, 2 x 128 bits, batch 1)", [
        (f"{f:.0%} of channel groups zero", BASE, dict(ports=2, ifm_skip=f)) for f in skips])
    study["paper"] = PAPER
    study["dpu"] = DPU
    atomic_write(args.json, json.dumps(study, indent=1) + "\n")
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()

"""How `sense estimate` shows a network plan (`host.plan.plan_network`): a per-layer table, the
totals, and an optional roofline-style figure (matplotlib, the `plot` extra)."""

from __future__ import annotations

__all__ = ["estimate_lines", "plot_estimate", "PAPER", "DPU"]

#: The paper's images/s (Sun et al., TVLSI 2023, ZCU102 at 200 MHz, 1,024 PEs) for comparison.
PAPER = {"alexnet": 471, "vgg16": 34, "resnet50": 53, "googlenet": 191}
#: Xilinx DPU on the ZCU102 (3 x B4096 at 281 MHz), frames/s as the issue quotes them.
DPU = {"resnet50": 180, "googlenet": 470, "vgg16": 41}


def _mb(n) -> str:
    return f"{n / 1e6:.2f}"


def estimate_lines(plan: dict, every_layer: bool = True) -> list[str]:
    t = plan["target"]
    lines = [f"{plan['network']} on {t['grid']} M={t['group']} "
             f"{'sparse' if t['sparse'] else 'dense'} at {t['clock_mhz']} MHz; IFM "
             f"{t['ifm']} {t['ifm_bytes'] // 1024} KiB, weights {t['weight_bytes'] // 1024} KiB; "
             f"DRAM {t['ports']} x {t['port_bits']}-bit = {t['dram_gb_per_s']:.1f} GB/s, "
             f"latency {t['dram_latency_cycles']} cycles; batch {plan['batch']}, IFM skip "
             f"{plan['ifm_skip']:.0%}"]
    if every_layer:
        lines.append(f"{'layer':28} {'kind':7} {'MMAC':>8} {'cycles':>9} {'PE use':>6} "
                     f"{'DRAM MB':>8} {'tiling':>14} {'order':6} limit")
        for e in plan["layers"]:
            tiling = f"{e['bands']}b{e['k_blocks']}k{e['c_blocks']}c"
            per = f"/{e['per_images']}" if e["per_images"] > 1 else ""
            lines.append(f"{e['name'][:28]:28} {e['kind']:7} {e['macs'] / 1e6:8.1f} "
                         f"{e['cycles']:9d}{per} {e['pe_util']:6.1%} "
                         f"{_mb(e['dram_read_bytes'] + e['dram_write_bytes']):>8} {tiling:>14} "
                         f"{e['order']:6} {e['limit']}")
    for key, what in (("total", "whole network"), ("conv", "conv layers only")):
        s = plan[key]
        lines.append(f"{what}: {s['images_per_s']:.1f} images/s, {s['gops_dense']:.0f} GOP/s "
                     f"(dense-equivalent), {s['gmacs_per_image']:.2f} GMAC/image, "
                     f"{s['dram_mb_per_image']:.1f} MB DRAM/image, PE use "
                     f"{s['pe_util_mac_weighted']:.1%} (MAC-weighted)")
    lines.append(f"activation memory: {plan['activation_bytes'] / 2**20:.1f} MiB with reuse "
                 f"({plan['activation_bytes_without_reuse'] / 2**20:.1f} MiB without)")
    name = plan["network"]
    if name in PAPER:
        dpu = f", Xilinx DPU {DPU[name]} (3 x B4096, 281 MHz)" if name in DPU else ""
        lines.append(f"paper: {PAPER[name]} images/s (1,024 PEs, 200 MHz){dpu}")
    return lines


def plot_estimate(plan: dict, path) -> None:
    """Per layer: cycles split into compute and DRAM stall (what the DRAM adds beyond compute)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hw.files import atomic_write

    layers = [e for e in plan["layers"] if e["cycles"]]
    compute = [min(e["compute_cycles"], e["cycles"]) / e["per_images"] for e in layers]
    stall = [max(e["cycles"] - e["compute_cycles"], 0) / e["per_images"] for e in layers]
    fig, ax = plt.subplots(figsize=(max(8, len(layers) * 0.12), 4.5))
    x = range(len(layers))
    ax.bar(x, compute, color="#4477aa", label="compute (core recurrence)")
    ax.bar(x, stall, bottom=compute, color="#ee6677", label="DRAM, fill and fixed costs")
    ax.set_ylabel("cycles per image")
    ax.set_xlabel("layer")
    t = plan["total"]
    ax.set_title(f"{plan['network']}: {t['images_per_s']:.1f} images/s, "
                 f"{t['dram_mb_per_image']:.1f} MB DRAM/image ({plan['target']['grid']}, "
                 f"{plan['target']['dram_gb_per_s']:.1f} GB/s)")
    ax.legend()
    fig.tight_layout()
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write(path, buf.getvalue())

"""Logic depth of a mapped Yosys netlist: the longest register-to-register path, in LUT levels.

`logic_depth(netlist, top)` takes the JSON (`write_json`) of a flattened `synth_xilinx` netlist
(or `synth_ecp5`: its LUT4, CCU2C, PFUMX/L6MUX21, MULT18X18D and TRELLIS_DPR16X4 count as
LUT, CARRY, MUXF, DSP and distributed RAM) and walks it bit by bit, so that a carry chain is
not a loop (Yosys's `ltp` works on whole cells and finds "loops" through every CARRY8 whose
outputs feed back into its own inputs through LUTs). A path starts at a flip-flop or memory
output, a DSP48E2 output when the DSP is registered, or a top-level input, and ends at the
inputs of the same kinds or at a top-level output. On it a LUT or an INV is one level; a
CARRY4/CARRY8 cell is no level but is counted (its outputs depend on its carry-in and on the
inputs of its own bit and the bits below); a
MUXF7/8/9 is no level; an unregistered DSP48E2 (Yosys leaves the product registers in the
fabric) is counted as a DSP on the path; a distributed RAM's read is one level from its read
address. These are mapped levels before placement, an estimate of where the critical paths are,
not a timing analysis.

Each path is charged to the block of the cell it ends at (the first `depth` levels of its
Amaranth hierarchy, as in `hw.synth`). With it comes ``path``: the named signals (Amaranth's
names, kept by Yosys as net names; a bus once) it passes through, from its start to its end, so
that a report names the logic to pipeline.
"""

from __future__ import annotations

__all__ = ["logic_depth", "rank", "bit_names", "DepthError"]

_LUT = {f"LUT{i}" for i in range(1, 7)} | {"INV", "LUT6_2"}
_CARRY = {"CARRY4", "CARRY8"}
_MUXF = {"MUXF7", "MUXF8", "MUXF9", "PFUMX", "L6MUX21"}
_LUTRAM_PREFIX = ("RAM16X", "RAM32X", "RAM64X", "RAM128X", "RAM256X", "RAM32M", "RAM64M",
                  "TRELLIS_DPR16X4")
_DSP_REGS = ("AREG", "BREG", "MREG", "PREG")
#: ECP5's MULT18X18D registers (Yosys's ECP5 mapping leaves them "NONE": all in the fabric).
_MULT18_REGS = ("REG_INPUTA_CLK", "REG_INPUTB_CLK", "REG_PIPELINE_CLK", "REG_OUTPUT_CLK")


class DepthError(ValueError):
    """The netlist has a combinational loop (the message names a net on it)."""


def _bits(cell, port):
    return cell["connections"].get(port, [])


def _edges(cell):
    """(output bit, input bits, LUT levels, carries, DSPs) for a combinational cell, or None for
    a sequential one (its outputs start paths, its inputs end them)."""
    kind = cell["type"]
    outs = [(p, b) for p, d in cell["port_directions"].items() if d == "output"
            for b in _bits(cell, p)]
    ins = [b for p, d in cell["port_directions"].items() if d == "input" for b in _bits(cell, p)]
    if kind in _LUT or kind in _MUXF:
        level = 1 if kind in _LUT else 0
        return [(b, ins, level, 0, 0) for _, b in outs]
    if kind == "CCU2C":
        # ECP5's two-bit carry cell: S0 from bit 0 and CIN, S1 and COUT from both bits and CIN
        lo = [b for p in ("A0", "B0", "C0", "D0", "CIN") for b in _bits(cell, p)]
        hi = lo + [b for p in ("A1", "B1", "C1", "D1") for b in _bits(cell, p)]
        return [(b, lo if port == "S0" else hi, 0, 1, 0)
                for port in ("S0", "S1", "COUT") for b in _bits(cell, port)]
    if kind == "MULT18X18D":
        params = cell.get("parameters", {})
        if any(str(params.get(r, "NONE")) != "NONE" for r in _MULT18_REGS):
            return None
        return [(b, ins, 0, 0, 1) for _, b in outs]
    if kind in _CARRY:
        ci = _bits(cell, "CI") + _bits(cell, "CI_TOP") + _bits(cell, "CYINIT")
        s, di = _bits(cell, "S"), _bits(cell, "DI")
        edges = []
        for port in ("O", "CO"):
            for i, b in enumerate(_bits(cell, port)):
                edges.append((b, ci + s[:i + 1] + di[:i + 1], 0, 1, 0))
        return edges
    if kind == "DSP48E2":
        params = cell.get("parameters", {})
        if any(int(str(params.get(r, "0")), 2) for r in _DSP_REGS):
            return None
        return [(b, ins, 0, 0, 1) for _, b in outs]
    if kind.startswith(_LUTRAM_PREFIX):
        addr = [b for p, d in cell["port_directions"].items()
                if d == "input" and p.startswith(("A", "DPRA", "ADDR", "RAD"))
                for b in _bits(cell, p)]
        return [(b, addr, 1, 0, 0) for _, b in outs]
    return None


def logic_depth(netlist: dict, top: str, group=lambda name: name, by_net: bool = False) -> dict:
    """{block: {"lut_levels", "carries", "dsps", "from", "to"}} for the deepest path ending in
    each block, plus "(all)" for the deepest overall; `group(cell name)` names a cell's block.
    With `by_net`, `group` is given the name of the signal the ending register drives (a
    Yosys-made name like ``a.b.$signal$7`` counts: its hierarchy is Amaranth's), else the last
    named signal on the path, else the cell's name: `synth_ecp5` names its flip-flops
    ``$auto$ff.cc...``, without their hierarchy. Deepest: most LUT levels, then most DSPs,
    then most carry cells (`rank`)."""
    module = netlist["modules"][top]
    driver = {}                      # bit -> (cell name, input bits, levels, carries, dsps)
    source = {}                      # bit -> the sequential cell that drives it
    sinks = []                       # (cell name, bit) where paths end
    drives = {}                      # sequential cell -> a bit it drives
    for name, cell in module["cells"].items():
        edges = _edges(cell)
        if edges is None:
            for p, d in cell["port_directions"].items():
                for b in _bits(cell, p):
                    if isinstance(b, int) and d == "input":
                        sinks.append((name, b))
                    elif isinstance(b, int):
                        source[b] = name
                        drives.setdefault(name, b)
            continue
        for out, ins, lv, ca, ds in edges:
            driver[out] = (name, [b for b in ins if isinstance(b, int)], lv, ca, ds)
    names = bit_names(module)
    held = bit_names(module, hidden=True) if by_net else {}
    for port in module["ports"].values():
        if port["direction"] == "output":
            sinks += [("(output)", b) for b in port["bits"] if isinstance(b, int)]

    arrival = {}                     # bit -> (levels, carries, dsps, start cell, previous bit)
    for _, bit in sinks:
        _arrive(bit, driver, arrival, source)
    best = {}
    for name, bit in sinks:
        lv, ca, ds, start, _ = arrival[bit]
        block = name
        if by_net:
            path = _path(bit, arrival, names)
            block = (held.get(drives.get(name)) or (path[-1] if path else None) or name)
        for key in (group(block), "(all)"):
            if key not in best or _rank((lv, ca, ds)) > _rank(best[key]):
                best[key] = (lv, ca, ds, start, name, bit)
    return {k: {"lut_levels": v[0], "carries": v[1], "dsps": v[2], "from": v[3], "to": v[4],
                "path": _path(v[5], arrival, names)}
            for k, v in sorted(best.items())}


def bit_names(module, hidden: bool = False) -> dict:
    """bit -> the shortest public net name that holds it (Yosys's own `$` names left out; with
    `hidden`, names with a `$` part after a hierarchy, ``a.b.$signal$7``, are kept)."""
    names = {}
    for name, net in module.get("netnames", {}).items():
        if hidden:
            if name.startswith("$") or "." not in name:
                continue
        elif net.get("hide_name") or "$" in name:
            continue
        for b in net["bits"]:
            if isinstance(b, int) and (b not in names or len(name) < len(names[b])):
                names[b] = name
    return names


def _path(bit, arrival, names) -> list:
    """The named signals on the deepest path into `bit`, start first, each once."""
    seen = []
    while bit is not None:
        name = names.get(bit)
        if name and name not in seen:
            seen.append(name)
        bit = arrival[bit][4]
    return seen[::-1]


def rank(entry: dict) -> tuple:
    """The order of `logic_depth`'s entries, deepest greatest (sort with ``reverse=True``)."""
    return _rank((entry["lut_levels"], entry["carries"], entry["dsps"]))


def _rank(arrival):
    """Deeper first: LUT levels, then DSPs, then carry cells."""
    return arrival[0], arrival[2], arrival[1]


def _arrive(bit, driver, arrival, source):
    """Fill arrival[bit] and every bit before it: a depth-first walk with its own stack (a path
    can be thousands of cells long); `source` names the register behind an undriven bit."""
    grey = set()                     # started, not finished: the bits on the current path
    stack = [bit]
    while stack:
        b = stack[-1]
        if b in arrival:
            stack.pop()
            continue
        if b not in driver:
            arrival[b] = (0, 0, 0, source.get(b, "(input)"), None)
            stack.pop()
            continue
        name, ins, lv, ca, ds = driver[b]
        if b not in grey:
            grey.add(b)
            for i in ins:
                if i in grey:
                    raise DepthError(f"combinational loop through net {i} (cell {name})")
                if i not in arrival:
                    stack.append(i)
            continue
        prev = max(ins, key=lambda i: _rank(arrival[i]), default=None)
        deepest = arrival[prev] if prev is not None else (0, 0, 0, name)
        arrival[b] = (deepest[0] + lv, deepest[1] + ca, deepest[2] + ds, deepest[3], prev)
        grey.discard(b)
        stack.pop()

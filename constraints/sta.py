"""Static timing over nextpnr's SDF: the critical paths of a design placed but not routed.

nextpnr-ecp5 prints the critical path only after routing, and the self-test system does not
route on this machine in an hour. After placement it estimates every connection's delay (the
same estimate its timing-driven placer and its "Max frequency ... (estimated)" line use), and
``--sdf`` writes those estimates with the cells' own delays: IOPATHs (combinational and
clock-to-output), SETUPHOLD checks, and an INTERCONNECT per driver-to-user connection (an
unrouted net's is nextpnr's predicted delay). `read_sdf` reads that file and `critical_paths`
walks it: a path starts at a clocked output (its clock-to-output delay), crosses
interconnects and combinational IOPATHs, and ends at a clocked input (plus its setup time).
The longest such path is the estimated clock period; `python scripts/ecp5_fmax.py --placed`
checks it against nextpnr's own estimate and names the signals on the worst paths.

One clock is assumed (the self-test system has one); paths from or to the design's pins and
from constants (nextpnr's GND and VCC drivers, carry inputs tied off) are not counted: they have
no clocked end in the SDF.
"""

from __future__ import annotations

import re

__all__ = ["read_sdf", "critical_paths", "endpoints_over", "SdfError"]

_DELAY = r"\(([-\d.e+]*):([-\d.e+]*):([-\d.e+]*)\)"
_NAME = r"((?:\\.|[^\s()\\])+)"
_CELLTYPE = re.compile(r'^\s*\(CELLTYPE\s+"((?:[^"]|"")*)"\)')
_INSTANCE = re.compile(r"^\s*\(INSTANCE\s*" + _NAME + r"?\s*\)")
_IOPATH = re.compile(r"^\s*\(IOPATH\s+" + _NAME + r"\s+" + _NAME + r"\s+" + _DELAY + r"\s+"
                     + _DELAY + r"\)")
_SETUP = re.compile(r"^\s*\(SETUPHOLD\s+\((?:posedge|negedge)\s+" + _NAME
                    + r"\)\s+\((?:posedge|negedge)\s+" + _NAME + r"\)\s+" + _DELAY)
_INTERCONNECT = re.compile(r"^\s*\(INTERCONNECT\s+" + _NAME + r"\s+" + _NAME + r"\s+" + _DELAY
                           + r"\s+" + _DELAY + r"\)")


class SdfError(ValueError):
    """The SDF could not be read, or its timing graph has a combinational loop."""


def _unescape(name: str) -> str:
    return re.sub(r"\\(.)", r"\1", name)


def _pin(escaped: str) -> tuple[str, str]:
    """(cell, port) of an SDF ``cell/port`` (the divider is the last unescaped slash)."""
    for i in range(len(escaped) - 1, -1, -1):
        if escaped[i] == "/" and (i == 0 or escaped[i - 1] != "\\"):
            return _unescape(escaped[:i]), _unescape(escaped[i + 1:])
    raise SdfError(f"no cell/port divider in {escaped!r}")


def _ns(groups) -> float:
    """The largest max delay of a rise/fall pair, in ns (the SDF's timescale is 1 ps)."""
    values = [float(g) for g in groups if g not in ("", None)]
    return max(values) / 1000.0 if values else 0.0


def read_sdf(text: str) -> dict:
    """{"cells": {instance: {"type", "comb": [(from, to, ns)], "clocked": [(clock, out, ns)],
    "setup": {port: ns}}}, "wires": [((cell, port), (cell, port), ns)]} from nextpnr's SDF
    (one entry a line, as nextpnr writes it). An IOPATH whose input is a clock port (one a
    SETUPHOLD check is taken against) is a clock-to-output delay; a setup time is the largest
    of the check's setup values (min:typ:max), a delay the largest of its rise and fall."""
    cells, wires = {}, []
    cell = None
    for line in text.splitlines():
        m = _INTERCONNECT.match(line)
        if m:
            wires.append((_pin(m.group(1)), _pin(m.group(2)), _ns(m.groups()[2:])))
            continue
        m = _CELLTYPE.match(line)
        if m:
            cell = {"type": m.group(1), "iopaths": [], "comb": [], "clocked": [], "setup": {}}
            continue
        m = _INSTANCE.match(line)
        if m and cell is not None:
            if m.group(1):
                cells[_unescape(m.group(1))] = cell
            continue
        m = _IOPATH.match(line)
        if m and cell is not None:
            cell["iopaths"].append((_unescape(m.group(1)), _unescape(m.group(2)),
                                    _ns(m.groups()[2:])))
            continue
        m = _SETUP.match(line)
        if m and cell is not None:
            port, clock = _unescape(m.group(1)), _unescape(m.group(2))
            cell["setup"][port] = max(cell["setup"].get(port, 0.0), _ns(m.groups()[2:5]))
            cell.setdefault("clocks", set()).add(clock)
    if not cells:
        raise SdfError("no cells in the SDF (is it nextpnr's --sdf output?)")
    for c in cells.values():
        clocks = c.pop("clocks", set())
        for frm, to, ns in c.pop("iopaths"):
            (c["clocked"] if frm in clocks else c["comb"]).append((frm, to, ns))
    return {"cells": cells, "wires": wires}


def _endpoints(sdf: dict):
    """(every clocked input a clocked output reaches, as (ns with its setup time, pin), longest
    first; the arrivals behind them)."""
    cells, into = sdf["cells"], {}
    for src, dst, ns in sdf["wires"]:
        into.setdefault(dst, []).append((src, ns, "wire"))
    for name, c in cells.items():
        for frm, to, ns in c["comb"]:
            into.setdefault((name, to), []).append(((name, frm), ns, "cell"))
    starts = {}
    for name, c in cells.items():
        for _, out, ns in c["clocked"]:
            starts[(name, out)] = max(starts.get((name, out), 0.0), ns)
    arrival = {}
    ends = []
    for name, c in cells.items():
        for port, setup in c["setup"].items():
            pin = (name, port)
            if pin in into:
                _arrive(pin, into, starts, arrival)
                if arrival[pin] is not None:
                    ends.append((arrival[pin][0] + setup, pin))
    ends.sort(key=lambda e: -e[0])
    return ends, arrival


def critical_paths(sdf: dict, count: int = 10, distinct=lambda cell: cell) -> list[dict]:
    """The `count` longest register-to-register paths, longest first, at most one per ending
    cell group (`distinct(cell name)`: paths into one bus count once): {"ns" (clock-to-output,
    wires, cells and the setup time), "from", "to" (cells), "cells": [the cells on it, start
    first], "wire_ns", "cell_ns"}."""
    ends, arrival = _endpoints(sdf)
    out, seen = [], set()
    for ns, pin in ends:
        key = distinct(pin[0])
        if key in seen:
            continue
        seen.add(key)
        out.append(_trace(ns, pin, arrival))
        if len(out) == count:
            break
    return out


def endpoints_over(sdf: dict, clocks_mhz) -> dict:
    """{"endpoints": clocked inputs reached, "over": {MHz: how many of them a clock of MHz
    would miss}}: how far a design is from a clock, beyond its single worst path."""
    ends, _ = _endpoints(sdf)
    return {"endpoints": len(ends),
            "over": {mhz: sum(1 for ns, _ in ends if ns > 1000.0 / mhz) for mhz in clocks_mhz}}


def _arrive(pin, into, starts, arrival):
    """arrival[pin] = (ns, previous pin, wire ns, cell ns), or None where no clocked output
    reaches the pin, for `pin` and every pin before it (a depth-first walk with its own
    stack)."""
    grey, stack = set(), [pin]
    while stack:
        p = stack[-1]
        if p in arrival:
            stack.pop()
            continue
        edges = into.get(p, []) if p not in starts else []
        if p not in grey:
            grey.add(p)
            for src, _, _ in edges:
                if src in grey and src not in arrival:
                    raise SdfError(f"combinational loop through {src[0]}/{src[1]}")
                if src not in arrival:
                    stack.append(src)
            continue
        # (a pin no clocked output reaches, a constant's, starts no path: None)
        best = (starts[p], None, 0.0, starts[p]) if p in starts else None
        for src, ns, kind in edges:
            a = arrival[src]
            if a is None:
                continue
            total = a[0] + ns
            if best is None or total > best[0]:
                best = (total, src, a[2] + (ns if kind == "wire" else 0.0),
                        a[3] + (ns if kind == "cell" else 0.0))
        arrival[p] = best
        grey.discard(p)
        stack.pop()


def _trace(ns, pin, arrival) -> dict:
    names, p = [], pin
    while p is not None:
        if not names or names[-1] != p[0]:
            names.append(p[0])
        p = arrival[p][1]
    names.reverse()
    _, _, wire, cell = arrival[pin]
    return {"ns": round(ns, 3), "from": names[0], "to": names[-1], "cells": names,
            "wire_ns": round(wire, 3), "cell_ns": round(ns - wire, 3)}

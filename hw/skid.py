"""A one-entry skid buffer that is bypassed while empty: it cuts a stream's ready path.

`skid_buffer(m, up, down)` joins an upstream stream (``up``: valid and payload in, ``ready``
driven here) to a downstream one (``down``: valid and payload driven here, ``ready`` in). An item
the downstream does not take at once waits in the buffer, and ``up.ready`` is the buffer's
register ("empty"), so no logic behind ``down.ready`` reaches the upstream (issue 15: the IFM
store's piece arithmetic ran into AXI RREADY and on into the DMA's counters).

The downstream sees the same items in the same cycles as without the buffer whenever the
upstream can offer its next item the cycle after a transfer (an AXI slave in a burst, a
pipeline): an item that waits is taken from the buffer, and the next one passes straight
through the cycle after. Only the upstream side changes: it hands over an item up to one
transfer early. (That is why it sits on the DMA's read data and not on its write data: there
the producers would hand their beats over early, and the output writer's cycles would no
longer be those `host.perf` models.)
"""

from __future__ import annotations

from amaranth.hdl import Mux, Signal

__all__ = ["skid_buffer"]


def skid_buffer(m, up, down, name: str = "skid"):
    """Wire `up` -> `down` through the buffer (both: objects with ``valid``, ``payload``,
    ``ready``). Returns "an item waits"."""
    full = Signal(name=f"{name}_full")
    held = Signal.like(up.payload, name=f"{name}_data")
    m.d.comb += [up.ready.eq(~full), down.valid.eq(full | up.valid),
                 down.payload.eq(Mux(full, held, up.payload))]
    with m.If(full):
        with m.If(down.ready):
            m.d.sync += full.eq(0)
    with m.Elif(up.valid & ~down.ready):
        m.d.sync += [full.eq(1), held.eq(up.payload)]
    return full

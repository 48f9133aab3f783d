"""constraints.sta: the longest register-to-register path of nextpnr's SDF."""

import pytest

from constraints.sta import SdfError, critical_paths, endpoints_over, read_sdf

# Two flip-flops and a LUT between them, a slower LUT chain to a third, a DSP-like cell with a
# combinational path; delays in ps as nextpnr writes them (rise then fall, min:typ:max).
SDF = r"""(DELAYFILE
  (SDFVERSION "3.0")
  (DESIGN "top")
  (DIVIDER /)
  (TIMESCALE 1ps)
  (CELL
    (CELLTYPE "top")
    (INSTANCE )
    (DELAY
      (ABSOLUTE
        (INTERCONNECT ff\$a/Q lut1/A (100:150:200) (100:150:200))
        (INTERCONNECT lut1/F ff_b/DI (50:60:70) (50:60:90))
        (INTERCONNECT ff\$a/Q lut2/A (10:10:10) (10:10:10))
        (INTERCONNECT lut2/F lut3/B (300:300:300) (300:300:300))
        (INTERCONNECT lut3/F mul/A0 (20:20:20) (20:20:20))
        (INTERCONNECT mul/P0 ff_c/DI (40:40:40) (40:40:40))
        (INTERCONNECT clk/O ff_c/CLK (0:0:0) (0:0:0))
        (INTERCONNECT \$PACKER_GND/GND lut3/B (9000:9000:9000) (9000:9000:9000))
      )
    )
  )
  (CELL
    (CELLTYPE "TRELLIS_FF")
    (INSTANCE ff\$a)
    (DELAY
      (ABSOLUTE
        (IOPATH CLK Q (400:400:500) (400:400:450))
      )
    )
    (TIMINGCHECK
      (SETUPHOLD (posedge DI) (posedge CLK) (30:30:30) (0:0:0))
      (SETUPHOLD (negedge DI) (posedge CLK) (30:30:30) (0:0:0))
    )
  )
  (CELL
    (CELLTYPE "TRELLIS_COMB")
    (INSTANCE lut1)
    (DELAY
      (ABSOLUTE
        (IOPATH A F (100:100:100) (100:100:100))
      )
    )
  )
  (CELL
    (CELLTYPE "TRELLIS_COMB")
    (INSTANCE lut2)
    (DELAY
      (ABSOLUTE
        (IOPATH A F (100:100:100) (100:100:100))
      )
    )
  )
  (CELL
    (CELLTYPE "TRELLIS_COMB")
    (INSTANCE lut3)
    (DELAY
      (ABSOLUTE
        (IOPATH B F (100:100:100) (100:100:100))
      )
    )
  )
  (CELL
    (CELLTYPE "MULT18X18D")
    (INSTANCE mul)
    (DELAY
      (ABSOLUTE
        (IOPATH A0 P0 (2000:2000:2000) (2000:2000:2000))
      )
    )
  )
  (CELL
    (CELLTYPE "TRELLIS_FF")
    (INSTANCE ff_b)
    (DELAY
      (ABSOLUTE
        (IOPATH CLK Q (400:400:400) (400:400:400))
      )
    )
    (TIMINGCHECK
      (SETUPHOLD (posedge DI) (posedge CLK) (30:30:30) (0:0:0))
    )
  )
  (CELL
    (CELLTYPE "TRELLIS_FF")
    (INSTANCE ff_c)
    (TIMINGCHECK
      (SETUPHOLD (posedge DI) (posedge CLK) (20:40:60) (0:0:0))
    )
  )
)
"""


def test_the_longest_path_with_its_cells_wires_and_setup():
    sdf = read_sdf(SDF)
    assert sdf["cells"]["ff$a"]["clocked"] == [("CLK", "Q", 0.5)]    # clock-to-out: the max
    paths = critical_paths(sdf)
    # ff$a (0.5) -> 0.01 -> lut2 (0.1) -> 0.3 -> lut3 (0.1) -> 0.02 -> mul (2.0) -> 0.04 -> ff_c
    # (setup 0.06, the largest of the check's values): 3.13 ns;
    # ff$a -> lut1 -> ff_b: 0.5 + 0.2 + 0.1 + 0.09 + 0.03 = 0.92 ns
    assert [p["to"] for p in paths] == ["ff_c", "ff_b"]
    top = paths[0]
    assert top["ns"] == pytest.approx(3.13)
    assert top["cells"] == ["ff$a", "lut2", "lut3", "mul", "ff_c"]
    assert top["wire_ns"] == pytest.approx(0.37)
    assert top["cell_ns"] == pytest.approx(2.76)
    assert paths[1]["ns"] == pytest.approx(0.92)
    # (a constant's 9 ns wire into lut3 starts no path)
    # one path per group of ending cells
    assert len(critical_paths(sdf, distinct=lambda cell: cell[:2])) == 1
    # ff_b at 0.92 ns, ff_c at 3.13 ns (ff$a's input is reached by nothing clocked)
    assert endpoints_over(sdf, (2000, 500, 100)) == {"endpoints": 2,
                                                     "over": {2000: 2, 500: 1, 100: 0}}


def test_a_combinational_loop_and_an_empty_file_are_refused():
    looped = SDF.replace("(INTERCONNECT lut2/F lut3/B", "(INTERCONNECT lut3/F lut2/A "
                         "(1:1:1) (1:1:1))\n        (INTERCONNECT lut2/F lut3/B")
    with pytest.raises(SdfError, match="loop"):
        critical_paths(read_sdf(looped))
    with pytest.raises(SdfError, match="no cells"):
        read_sdf("(DELAYFILE\n)\n")

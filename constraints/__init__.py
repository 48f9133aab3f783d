"""Board platforms for Sense (Amaranth platform classes with cited pins)."""

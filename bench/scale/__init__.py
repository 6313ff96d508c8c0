"""`make bench-scale`: the national-scale rehearsal (a province file imported and projected by every consumer)."""

"""Groups of the uppka service."""

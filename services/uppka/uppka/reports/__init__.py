"""Reports of the uppka service."""

"""Targets of the uppka service."""

"""Businesses of the uppka service."""

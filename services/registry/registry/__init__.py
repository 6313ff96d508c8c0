"""The registry service of Kencana."""

"""The uppka service of Kencana."""

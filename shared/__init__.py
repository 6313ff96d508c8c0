"""Kencana's common library: each mechanism every service needs, written once."""

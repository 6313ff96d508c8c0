"""funds of the DASHAT service."""

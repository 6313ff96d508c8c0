"""outcomes of the DASHAT service."""

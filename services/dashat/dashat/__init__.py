"""The dashat service of Kencana."""

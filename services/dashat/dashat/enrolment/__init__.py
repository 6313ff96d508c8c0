"""enrolment of the DASHAT service."""

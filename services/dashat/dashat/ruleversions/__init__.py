"""DASHAT rule versions: the enrolment rules as configuration officers change without a deploy."""

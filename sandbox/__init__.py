"""Local stand-ins for Qualys, Slack and AWS, for tests and the demo."""

"""Slack notifications of connector outcomes: ``message`` builds them, ``notifier`` posts them."""

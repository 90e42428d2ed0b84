"""Fetching politely and safely: one bounded GET (download), the private-address guard (netguard),
robots.txt (robots), per-host limits (hostlimit) and conditional-request validators (validators)."""

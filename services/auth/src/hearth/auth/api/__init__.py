"""The auth service's HTTP routes: tokens, users, keys."""

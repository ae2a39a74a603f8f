"""Hearth auth: users, signed access tokens, refresh token families, revocation marks."""

"""Hearth registry: homes, memberships, devices and capabilities, the authorisation API."""

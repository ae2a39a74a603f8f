"""Hearth realtime: JWT-checked Socket.IO rooms mapped onto MQTT topics."""

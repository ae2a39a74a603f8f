"""Realtime's HTTP routes (its events are Socket.IO: :mod:`hearth.realtime.sockets`)."""

"""hearth-device: the device side of docs/topics.md.

``hearth_device.protocol`` is MicroPython-safe (no typing, dataclasses, enum or regular
expressions; only ``json``, ``math`` and ``time``) so the ESP firmware imports the same
files; it mirrors the grammar of ``hearth.common.topics`` and the payloads of
``hearth.common.messages``, and ``devices/core/tests/test_mirror.py`` checks the two copies
against each other. The rest (``config``, ``outbox``, ``session``, ``device``) is CPython.
"""

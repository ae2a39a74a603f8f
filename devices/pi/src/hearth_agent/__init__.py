"""hearth-agent: the Raspberry Pi agent (sensors, relays, local safety) on hearth-device."""

"""The MicroPython-safe protocol modules (mirrors of hearth.common's contracts)."""

"""Portgate gate agent: scanners, offline cache, sync and the kiosk screen."""

__version__ = "0.1.0"

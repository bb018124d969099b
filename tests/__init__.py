"""
Tests for socksgate.
"""

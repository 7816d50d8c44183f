"""Tests of `matcher`, one file per module or job."""

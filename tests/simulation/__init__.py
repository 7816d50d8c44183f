"""Tests of `simulation`, one file per module or job."""

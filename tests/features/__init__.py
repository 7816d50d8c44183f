"""Tests of `features`, one file per module or job."""

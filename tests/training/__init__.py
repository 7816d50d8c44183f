"""Tests of `training`, one file per module or job."""

"""Cluster tier: tests against a real control plane on this machine (see README.md)."""

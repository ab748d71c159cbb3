"""Capacity planner: delivery ratio against sensors for nano gateways (model, report)."""

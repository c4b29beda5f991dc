"""The rollout state machine: pure functions from (resource, observation) to a plan."""

"""The search graph's nodes: thin functions that route and record, calling the policy and the engine."""

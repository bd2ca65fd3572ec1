"""LLM plumbing: robust parsing of model answers, token/cost accounting."""

"""LangGraph graphs of ksearch-agent (shipped as ``ksearch_agent.graphs``)."""

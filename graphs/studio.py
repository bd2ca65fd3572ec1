"""Entry points named in langgraph.json (LangGraph Studio, ``langgraph dev``): compiled graphs with no
checkpointer of their own, so the server supplies persistence."""

from ksearch_agent.graphs.kernel_chat import build_kernel_chat_graph
from ksearch_agent.graphs.kernel_search import build_kernel_search_graph
from ksearch_agent.graphs.parallel_search import build_parallel_search_graph

kernel_search = build_kernel_search_graph()
kernel_search_parallel = build_parallel_search_graph()
kernel_chat = build_kernel_chat_graph()

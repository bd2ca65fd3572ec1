"""FlashInfer-Bench (FIB) formats in and out: Definition, Workload rows, Solution and Trace.

One pydantic model per format (the single source of each schema), readers that name the file, the line
(JSONL) and the field on bad input, the import of a Definition and its workloads as a task directory, the
export of a candidate as a Solution and of an evaluation as Trace rows, and the K-Search score against a
library opponent.
"""

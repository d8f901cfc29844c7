"""`make bench`: TiMemory measured side by side with its peers. Results go to docs/benchmarks.md."""

"""nodegraph: typed node-graph workflows for image generation with LLM steps."""

__version__ = "0.1.0"

"""The built-in node library, installed as `nodegraph.nodes`.

Each module lists its node classes in `NODE_TYPES`. Modules that need torch,
diffusers or transformers import them inside `run`, never at module level.
"""
